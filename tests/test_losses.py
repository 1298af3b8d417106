"""Losses: closed forms by hand (exact at dyadic rationals), numpy, and PyTorch float64."""

from __future__ import annotations

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refgrad import losses
from refgrad.differentiate.reverse import backward
from refgrad.errors import ShapeError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.trace import trace


def exact(fn, params, data=None, backend=("mp", 100)):
    """Loss and gradient as computed by a backend (object arrays of mpf for 'mp')."""
    g = trace(fn, params, data or {})
    b = get_backend(*backend)
    vals = forward(g, b)
    return vals[g.output], backward(g, b, vals)


def frac(v) -> Fraction:
    """The exact rational value of an mpf."""
    sign, man, exp, _ = np.asarray(v).item()._mpf_  # not mpf(v): that rounds to mp.prec
    return (-1) ** sign * Fraction(int(man)) * Fraction(2) ** int(exp)


def dyadic(rng, shape, denom=64):
    """Random k/denom values: exactly representable, so closed forms can be compared exactly."""
    return rng.integers(-4 * denom, 4 * denom, size=shape) / denom


def fracs(a):
    return np.vectorize(Fraction, otypes=[object])(a)


RNG = np.random.default_rng(7)


# --- mse: closed forms, exact ----------------------------------------------------------------
@pytest.mark.parametrize("reduction,scale", [("sum", 1), ("mean", Fraction(1, 32)),
                                             ("half_mean", Fraction(1, 64))])
def test_mse_value_and_gradient_are_exact_closed_forms(reduction, scale):
    x, t = dyadic(RNG, (4, 8)), dyadic(RNG, (4, 8))
    val, g = exact(lambda p, d: losses.mse(p["x"], d["t"], reduction), {"x": x}, {"t": t})
    diff = fracs(x) - fracs(t)
    assert frac(val) == scale * sum((diff**2).reshape(-1))
    # d/dx Σ (x − t)² = 2(x − t), times the normalisation
    assert (np.vectorize(frac)(g["x"]) == 2 * scale * diff).all()


def test_mse_rows_is_the_user_story_formula_exactly():
    """finalError = (1/r) Σ_rows (1/(2n)) Σ_i (x − t)²; gradient (x − t)/(r·n), r = n = 8."""
    x, t = dyadic(RNG, (8, 8)), dyadic(RNG, (8, 8))
    val, g = exact(lambda p, d: losses.mse_rows(p["x"], d["t"]), {"x": x}, {"t": t})
    diff = fracs(x) - fracs(t)
    rows = [Fraction(1, 16) * sum(r**2 for r in row) for row in diff]
    assert frac(val) == Fraction(1, 8) * sum(rows)
    assert (np.vectorize(frac)(g["x"]) == diff / 64).all()


def test_mse_rows_non_dyadic_sizes_match_the_formula_to_working_precision():
    x, t = dyadic(RNG, (3, 5)), dyadic(RNG, (3, 5))
    val, g = exact(lambda p, d: losses.mse_rows(p["x"], d["t"]), {"x": x}, {"t": t})
    diff = fracs(x) - fracs(t)
    want = Fraction(1, 30) * sum((diff**2).reshape(-1))
    assert abs(frac(val) - want) <= abs(want) * Fraction(1, 2**95)
    err = np.vectorize(lambda a, b: abs(frac(a) - b))(g["x"], diff / 15)
    assert (err <= Fraction(1, 2**95)).all()


def test_mse_rows_of_a_vector_is_one_row():
    x, t = dyadic(RNG, (6,)), dyadic(RNG, (6,))
    val, _ = exact(lambda p, d: losses.mse_rows(p["x"], d["t"]), {"x": x}, {"t": t})
    val2, _ = exact(lambda p, d: losses.mse(p["x"], d["t"], "half_mean"), {"x": x}, {"t": t})
    assert val == val2


@settings(max_examples=25, deadline=None)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
       reduction=st.sampled_from(["sum", "mean", "half_mean"]), seed=st.integers(0, 2**16))
def test_mse_reductions_match_numpy(shape, reduction, seed):
    rng = np.random.default_rng(seed)
    x, t = rng.standard_normal(shape), rng.standard_normal(shape)
    val, g = exact(lambda p, d: losses.mse(p["x"], d["t"], reduction), {"x": x}, {"t": t})
    div = {"sum": 1, "mean": x.size, "half_mean": 2 * x.size}[reduction]
    np.testing.assert_allclose(float(val), ((x - t) ** 2).sum() / div, rtol=1e-13)
    np.testing.assert_allclose(g["x"].astype(float), 2 * (x - t) / div, rtol=1e-13, atol=1e-300)


def test_mse_errors():
    with pytest.raises(ShapeError, match="target shape"):
        trace(lambda p, d: losses.mse(p["x"], d["t"]), {"x": np.ones(3)}, {"t": np.ones(4)})
    with pytest.raises(ValueError, match="reduction"):
        trace(lambda p, d: losses.mse(p["x"], d["t"], "avg"), {"x": np.ones(3)}, {"t": np.ones(3)})
    with pytest.raises(ShapeError, match="rows"):
        trace(lambda p, d: losses.mse_rows(p["x"], d["t"]), {"x": np.ones((2, 2, 2))},
              {"t": np.ones((2, 2, 2))})


# --- cross-entropies against PyTorch ---------------------------------------------------------
@pytest.fixture
def torch():
    """PyTorch float64 as the oracle; only these tests skip when it is absent."""
    return pytest.importorskip("torch")


def against_torch(torch, ours, theirs, params, data=None, rtol=1e-12):
    val, g = exact(ours, params, data)
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    out = theirs(ts)
    out.backward()
    np.testing.assert_allclose(float(val), out.item(), rtol=rtol)
    for k, t in ts.items():
        want = t.grad.numpy()
        np.testing.assert_allclose(g[k].astype(float), want, rtol=rtol,
                                   atol=rtol * np.abs(want).max())


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("batch", [(), (6,), (2, 3)])
def test_softmax_cross_entropy_integer_labels(torch, reduction, batch):
    F = torch.nn.functional
    z = RNG.standard_normal((*batch, 5)) * 3
    y = RNG.integers(0, 5, size=batch)

    def theirs(t):
        return F.cross_entropy(t["z"].reshape(-1, 5), torch.tensor(y).reshape(-1),
                               reduction=reduction)

    against_torch(torch, lambda p, d: losses.softmax_cross_entropy(p["z"], d["y"], reduction),
                  theirs, {"z": z}, {"y": y})


@pytest.mark.parametrize("traced", [True, False])
def test_softmax_cross_entropy_probability_labels(torch, traced):
    F = torch.nn.functional
    z = RNG.standard_normal((4, 3))
    y = RNG.dirichlet(np.ones(3), size=4)

    def ours(p, d):
        return losses.softmax_cross_entropy(p["z"], d["y"] if traced else y, "sum")

    against_torch(torch, ours, lambda t: F.cross_entropy(t["z"], torch.tensor(y), reduction="sum"),
                  {"z": z}, {"y": y} if traced else None)


def test_softmax_cross_entropy_is_stable_in_float64(torch):
    F = torch.nn.functional
    """Logits near ±1000 overflow a naive exp; the log-softmax form stays finite and right."""
    z = np.array([[1000.0, -1000.0, 999.0], [-1000.0, -999.5, -1001.0]])
    y = np.array([2, 0])
    val, g = exact(lambda p, d: losses.softmax_cross_entropy(p["z"], d["y"]), {"z": z}, {"y": y},
                   backend=("float64",))
    tz = torch.tensor(z, requires_grad=True)
    out = F.cross_entropy(tz, torch.tensor(y))
    out.backward()
    assert np.isfinite(val) and np.isfinite(g["z"]).all()
    np.testing.assert_allclose(val, out.item(), rtol=1e-14)
    np.testing.assert_allclose(g["z"], tz.grad.numpy(), rtol=1e-14, atol=1e-16)


def test_softmax_cross_entropy_errors():
    z = {"z": np.zeros((3, 4))}

    def ce(y):
        return lambda p, d: losses.softmax_cross_entropy(p["z"], y)

    with pytest.raises(ShapeError, match=r"\[0, 4\)"):
        trace(ce(np.array([0, 1, 4])), z)
    with pytest.raises(ShapeError, match="integer class indices"):
        trace(ce(np.array([0.0, 1.0, 2.0])), z)
    with pytest.raises(ShapeError, match="expected shape"):
        trace(ce(np.array([0, 1])), z)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropy_on_probabilities(torch, reduction):
    F = torch.nn.functional
    p = RNG.uniform(0.05, 0.95, size=(3, 4))
    y = RNG.uniform(0, 1, size=(3, 4))
    against_torch(torch, lambda q, d: losses.binary_cross_entropy(q["p"], d["y"], reduction),
                  lambda t: F.binary_cross_entropy(t["p"], torch.tensor(y), reduction=reduction),
                  {"p": p}, {"y": y})


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_binary_cross_entropy_with_logits(torch, reduction):
    F = torch.nn.functional
    z = RNG.standard_normal((5, 2)) * 4
    y = (RNG.uniform(size=(5, 2)) > 0.5).astype(float)
    against_torch(torch,
        lambda q, d: losses.binary_cross_entropy_with_logits(q["z"], d["y"], reduction),
        lambda t: F.binary_cross_entropy_with_logits(t["z"], torch.tensor(y), reduction=reduction),
        {"z": z}, {"y": y})


def test_bce_with_logits_equals_bce_of_sigmoid_and_is_stable():
    from refgrad.trace import ops as rg

    z = np.array([-3.0, 0.5, 2.0])
    y = np.array([0.0, 1.0, 0.25])
    a, _ = exact(lambda q, d: losses.binary_cross_entropy_with_logits(q["z"], d["y"]),
                 {"z": z}, {"y": y}, backend=("mp", 200))
    b, _ = exact(lambda q, d: losses.binary_cross_entropy(rg.sigmoid(q["z"]), d["y"]),
                 {"z": z}, {"y": y}, backend=("mp", 200))
    assert abs(a - b) < mpmath.mpf(2) ** -190
    big = np.array([800.0, -800.0])
    val, g = exact(lambda q, d: losses.binary_cross_entropy_with_logits(q["z"], d["y"], "sum"),
                   {"z": big}, {"y": np.array([0.0, 1.0])}, backend=("float64",))
    assert val == 1600.0 and g["z"].tolist() == [1.0, -1.0]
