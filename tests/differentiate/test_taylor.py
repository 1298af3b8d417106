"""Taylor mode against independent oracles: sympy.diff of to_sympy, reverse mode, closed forms."""

import math

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.differentiate.taylor import coordinate_derivatives, directional, taylor_coefficients
from refgrad.errors import InputError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.to_sympy import exact, point, to_sympy
from tests.graph.test_to_sympy import CASES, FREEZE, MP, close, graph_of, mpf, num

F64 = get_backend("float64")


def _coords(n):
    return sorted({0, n - 1})


@pytest.mark.parametrize("name", list(CASES))
def test_directional_derivatives_equal_sympy(name):
    """d^j/dt^j f(x + t e_k), j = 1..3, against sympy.diff(expr, x_k, j) to 50 digits."""
    g = graph_of(name)
    expr, syms = to_sympy(g, freeze_cuts=name in FREEZE)
    subs = point(g, syms)
    for k, arr in syms.items():
        flat = arr.reshape(-1)
        idx = _coords(flat.size)
        got = directional(g, MP, k, order=3, index=idx)
        for col, i in enumerate(idx):
            d = expr
            for j in range(3):
                d = sp.diff(d, flat[i])
                assert close(got[j, col], num(d, subs)), (k, i, j + 1)


@pytest.mark.parametrize("name", list(CASES))
def test_first_order_equals_reverse_mode(name):
    g = graph_of(name)
    grad = backward(g, MP, forward(g, MP))
    d1 = coordinate_derivatives(g, MP, order=1)
    assert set(d1) == set(grad)
    for k in grad:
        assert d1[k].shape == (1,) + grad[k].shape
        for idx in np.ndindex(*grad[k].shape):
            assert close(d1[k][(0,) + idx], grad[k][idx]), (k, idx)


def test_arbitrary_directions_and_order_five():
    """Along a random v (both params moving), f_j·j! equals d^j/dt^j of the sympy expression."""
    g = graph_of("activations")
    expr, syms = to_sympy(g)
    rng = np.random.default_rng(1)
    v = {k: rng.standard_normal((2,) + a.shape) for k, a in syms.items()}
    coeffs = taylor_coefficients(g, MP, v, order=5)
    t = sp.Symbol("t", real=True)
    subs = point(g, syms)
    for r in range(2):
        line = expr.xreplace({s: subs[s] + sp.Rational(*v[k][r][i].as_integer_ratio()) * t
                              for k, a in syms.items() for i, s in np.ndenumerate(a)})
        d = line
        for j in range(1, 6):
            d = sp.diff(d, t)
            assert close(coeffs[j][r], num(d / math.factorial(j), {t: 0})), (r, j)
    assert close(coeffs[0], num(expr, subs))


def test_mse_third_derivative_is_exactly_zero():
    """mean((X W + b − Y)²) is quadratic: f''' ≡ 0 exactly; f'' = 2 Σ_n X[n,i]²/(N·M) along W[i,j],
    2N/(N·M) = 1 along b[j] (N = 5 rows, M = 2 outputs)."""
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    fn = lambda p, d: rg.mean(rg.square(d["X"] @ p["W"] + p["b"] - d["Y"]))  # noqa: E731
    params = {"W": rng.standard_normal((3, 2)), "b": rng.standard_normal(2)}
    g = rg.trace(fn, params, {"X": X, "Y": Y})
    D = coordinate_derivatives(g, MP, order=3)
    assert all(v == 0 for k in D for v in D[k][2].ravel())
    for i in range(3):
        want = sp.Rational(2, 10) * sum(exact(X[n, i]) ** 2 for n in range(5))
        assert all(close(D["W"][1, i, j], want) for j in range(2))
    assert all(close(v, 1) for v in D["b"][1])


def test_float64_agrees_with_mp_on_a_smooth_model():
    rng = np.random.default_rng(3)
    params = {"W1": rng.standard_normal((4, 5)), "b1": rng.standard_normal(5),
              "W2": rng.standard_normal((5, 3))}
    data = {"X": rng.standard_normal((6, 4))}
    labels = rng.integers(0, 3, 6)

    def fn(p, d):
        h = rg.tanh(d["X"] @ p["W1"] + p["b1"])
        return -rg.mean(rg.log_softmax(h @ p["W2"], axis=1)[np.arange(6), labels])

    g = rg.trace(fn, params, data)
    exact_d = coordinate_derivatives(g, MP, order=3)
    fast = coordinate_derivatives(g, F64, order=3, chunk=7)
    for k in params:
        assert fast[k].dtype == np.float64
        for j in range(3):
            want = np.array([float(mpf(v)) for v in exact_d[k][j].ravel()])
            err = np.max(np.abs(fast[k][j].ravel() - want))
            assert err <= 1e-10 * np.max(np.abs(want)), (k, j, err)


def test_float_derivatives_where_the_textbook_formula_overflows():
    """sigmoid'' = e^-a (e^-a - 1)/(1 + e^-a)^3 is inf/inf at a = -750 in float64: redone in mp."""
    g = rg.trace(lambda p, d: rg.sum(rg.sigmoid(p["x"]) * p["x"]), {"x": np.array([-750.0, 2.0])})
    fast = directional(g, F64, "x", order=3)
    want = np.array([[float(mpf(v)) for v in row] for row in directional(g, MP, "x", order=3)])
    assert np.isfinite(fast).all()
    np.testing.assert_allclose(fast, want, rtol=1e-13, atol=1e-300)


def test_chunks_index_and_params_point():
    g = graph_of("matmul 2d@2d")
    full = directional(g, MP, "A", order=2)
    assert full.shape == (2, 6)
    for chunk in (1, 4):
        part = directional(g, MP, "A", order=2, index=[5, 0, -2], chunk=chunk)
        assert all(close(part[j, c], full[j, i]) for j in range(2) for c, i in enumerate([5, 0, 4]))
    moved = {"A": CASES["matmul 2d@2d"][1]["A"] * 2, "B": CASES["matmul 2d@2d"][1]["B"]}
    expr, syms = to_sympy(g)
    d2 = directional(g, MP, "B", order=2, index=[3], params=moved)
    s = syms["B"].reshape(-1)[3]
    assert close(d2[1, 0], num(sp.diff(expr, s, 2), point(g, syms, moved)))


def test_cut_edges_are_constants():
    """A cut input contributes no higher coefficients: equal to sympy with the cut frozen."""
    fn = lambda p, d: rg.sum(rg.tanh(p["x"] * p["x"]) * rg.exp(p["x"]))  # noqa: E731
    g = rg.trace(fn, {"x": np.array([0.5, -0.75])})
    mul = g.find("mul")[-1]
    cut = g.cut([(mul.id, 0)])
    expr, syms = to_sympy(cut, freeze_cuts=True)
    full, _ = to_sympy(g)
    subs = point(g, syms)
    got = directional(cut, MP, "x", order=3)
    s = syms["x"][1]
    for j in range(1, 4):
        assert close(got[j - 1, 1], num(sp.diff(expr, s, j), subs))
        assert not close(got[j - 1, 1], num(sp.diff(full, s, j), subs))


@pytest.mark.parametrize("backend", ["iv", "arb"])
def test_rigorous_backends_enclose_mp(backend):
    b = get_backend(backend, 200)
    g = graph_of("activations")
    want = directional(g, MP, "x", order=3)
    got = directional(g, b, "x", order=3)
    for w, e in zip(want.ravel(), got.ravel(), strict=True):
        mid, rad = mpf(b.to_mpf(np.asarray(e))[()]), mpf(b.radius(np.asarray(e))[()])
        with mpmath.workprec(400):
            assert abs(mid - mpf(w)) <= rad + mpmath.mpf(2) ** -190 and rad < mpmath.mpf(2) ** -150


def test_bad_requests_are_clear():
    g = graph_of("activations")
    with pytest.raises(InputError, match="order"):
        directional(g, MP, "x", order=6)
    with pytest.raises(InputError, match="no param"):
        directional(g, MP, "z")
    with pytest.raises(InputError, match="out of range"):
        directional(g, MP, "x", index=[2])
    with pytest.raises(InputError, match="shape"):
        taylor_coefficients(g, MP, {"x": np.ones(3)})


# --- property: random small compositions --------------------------------------------------
UNARY = [rg.tanh, rg.sigmoid, rg.softplus, rg.negative, rg.square,
         lambda u: rg.exp(-rg.square(u)), lambda u: rg.log1p(rg.square(u)),
         lambda u: rg.sqrt(1 + rg.square(u)), lambda u: u[::-1], lambda u: rg.softmax(u, axis=0),
         lambda u: rg.concatenate([u[1:], u[:1]]), lambda u: rg.sum(u, keepdims=True) * u,
         lambda u: rg.reshape(rg.transpose(rg.stack([u, u * u])), (6,))[:3]]
BINARY = [rg.add, rg.subtract, rg.multiply, rg.maximum, rg.minimum,
          lambda u, w: u / (1 + rg.square(w)),
          lambda u, w: np.array([[1.0, -2.0, 0.5], [0.25, 1.0, 3.0], [2.0, 0.0, -1.0]]) @ (u * w)]
ops = st.lists(st.tuples(st.booleans(), st.integers(0, 99), st.integers(0, 99), st.integers(0, 99)),
               min_size=1, max_size=4)
values = st.lists(st.floats(-2, 2, allow_nan=False, width=32), min_size=6, max_size=6)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops, values)
def test_random_compositions_match_sympy(program, vals):
    def fn(p, d):
        pool = [p["x"], p["y"]]
        for binary, o, i, j in program:
            u, w = pool[i % len(pool)], pool[j % len(pool)]
            pool.append(BINARY[o % len(BINARY)](u, w) if binary else UNARY[o % len(UNARY)](u))
        return rg.sum(pool[-1] * np.array([1.0, -0.5, 2.0])) + 0 * rg.sum(p["x"] + p["y"])

    v = np.array(vals, dtype=np.float64)
    g = rg.trace(fn, {"x": v[:3], "y": v[3:]})
    expr, syms = to_sympy(g)
    subs = point(g, syms)
    got = directional(g, MP, "x", order=3)
    for i, s in enumerate(syms["x"]):
        d = expr
        for j in range(3):
            d = sp.diff(d, s)
            assert close(got[j, i], num(d, subs), digits=45), (i, j + 1)
