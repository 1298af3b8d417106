"""Formulas: parsed with only supported functions, evaluated exactly at the point's own values."""

import mpmath
import numpy as np
import pytest
import sympy as sp

import refgrad as rg
from refgrad.errors import InputError, ShapeError
from refgrad.score.formula import SUPPORTED, Formula

X = np.array([0.5, -1.25, 2.0])
GRAPH = rg.trace(lambda p, d: rg.sum(p["X"] ** 2), {"X": X})


def _at(formula, x, prec=64):
    return Formula(formula, GRAPH, {}, "X", None).at({"X": x}, {}, prec)[0]


# --- functions: only the supported ones, refused at parse time ----------------------------------
@pytest.mark.parametrize("formula, name", [
    ("foo(X[i])", "foo"),
    ("2*X[i] + Sum(bar(X[k]), (k, 0, 2))", "bar"),
    ("sin(X[i])", "sin"),  # a sympy function, but not one a formula string knows
    (sp.sin(sp.Symbol("X[0]")), "sin"),
    ({(0,): "X[0]", (1,): "X[1]", (2,): sp.Function("g")(sp.Symbol("X[2]"))}, "g"),
])
def test_unsupported_functions_are_refused_by_name(formula, name):
    with pytest.raises(InputError, match=f"unsupported function.*{name}") as e:
        Formula(formula, GRAPH, {}, "X", None)
    assert "supported: " + ", ".join(SUPPORTED) in str(e.value)


def test_supported_functions_evaluate():
    text = "sigmoid(X[i]) + softplus(X[i]) + tanh(X[i]) + sqrt(X[i]**2) + factorial(3) + pi"
    got = _at(text, X)
    with mpmath.workprec(128):
        for g, x in zip(got, X.tolist(), strict=True):
            want = (1 / (1 + mpmath.exp(-x)) + mpmath.log(1 + mpmath.exp(x)) + mpmath.tanh(x)
                    + abs(x) + 6 + mpmath.pi)
            assert abs(g - want) <= abs(want) * mpmath.mpf(2) ** -120


def test_a_0d_tensor_under_sqrt_of_a_square_is_not_refused():
    """sympy writes sqrt(x**2) of a real x as Abs(x): sympy's doing, not an unknown function."""
    g = rg.trace(lambda p, d: p["s"] ** 2, {"s": np.array(-1.5)})
    out = Formula("sqrt(s**2)", g, {}, "s", None).at({"s": np.array(-1.5)}, {}, 64)[0]
    assert out[()] == 1.5


# --- values reach mpmath unrounded ----------------------------------------------------------------
def test_wide_mpf_inputs_are_not_rounded():
    """mpf(x) would re-round a 200-bit value to the working precision; it must stay as it is."""
    with mpmath.workprec(200):
        wide = np.array([mpmath.mpf(1) / 3, -mpmath.mpf(2) / 7, mpmath.sqrt(2)], dtype=object)
    got = _at("X[i]", wide, prec=64)
    assert all(g == w for g, w in zip(got, wide, strict=True))
    assert mpmath.mp.prec == 53


def test_float_inputs_are_exact_and_the_result_has_twice_the_precision():
    got, slack = Formula("X[i]/3", GRAPH, {}, "X", None).at({"X": X}, {}, 100)
    with mpmath.workprec(400):
        for g, s, x in zip(got, slack, X.tolist(), strict=True):
            assert abs(g - mpmath.mpf(x) / 3) <= abs(x) * mpmath.mpf(2) ** -199
            assert 0 < s <= abs(x) * mpmath.mpf(2) ** -99


# --- callable formulas: traced with any output shape ---------------------------------------------
def test_callable_formulas_trace_arrays_and_constants():
    assert list(_at(lambda p, d: 2 * p["X"], X)) == [1.0, -2.5, 4.0]
    assert list(_at(lambda p, d: np.array([1.0, 2.0, 3.0]), X)) == [1.0, 2.0, 3.0]
    with pytest.raises(ShapeError, match=r"shape \(2,\)"):
        _at(lambda p, d: p["X"][:2], X)
    with pytest.raises(InputError, match="not an array computed with refgrad ops"):
        _at(lambda p, d: "2*X", X)
    with pytest.raises(rg.ShapeError, match="must be a scalar"):
        rg.trace(lambda p, d: 2 * p["X"], {"X": X})  # the default still wants a scalar loss
