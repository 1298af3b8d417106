"""refgrad's finite differences: schemes against closed forms, exact steps, dtype, kinks, errors."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.finite_difference import STENCILS, steps_for

X = np.array([0.75, -1.25, 2.0, 0.1], dtype=np.float64)


def cubic(p, d):  # f = Σ x³/3 + x²: f' = x² + 2x, f'' = 2x + 2, f''' = 2, f^(5) = 0
    return rg.sum(p["x"] ** 3 / 3 + p["x"] ** 2)


@pytest.mark.parametrize("scheme, order", [("forward", 1), ("backward", 1), ("central", 2),
                                           ("five_point", 4), ("complex", 2)])
def test_schemes_have_their_truncation_error(scheme, order):
    h = 1e-2
    fd = rg.finite_difference(cubic, {"x": X}, dtype=np.float64, eps=h, scheme=scheme)
    hh = fd.steps["x"]
    exact = X**2 + 2 * X
    err = fd["x"] - exact
    if scheme == "forward":
        want = hh / 2 * (2 * X + 2) + hh**2 / 6 * 2
    elif scheme == "backward":
        want = -hh / 2 * (2 * X + 2) + hh**2 / 6 * 2
    elif scheme == "central":
        want = hh**2 / 6 * 2
    elif scheme == "complex":
        want = -(hh**2) / 6 * 2
    else:
        want = np.zeros_like(X)  # the 5-point stencil is exact on cubics
    assert np.allclose(err, want, rtol=1e-6, atol=1e-12), (scheme, err, want)


def test_steps_are_exact_in_the_dtype():
    x = np.array([1.0000001, 3.3, -7.1, 0.0, 1e-3], dtype=np.float32).astype(np.float64)
    for dt in (np.float16, np.float32, np.float64):
        h = steps_for(x.astype(dt).astype(np.float64), 1e-3, False, np.dtype(dt))
        xx = x.astype(dt).astype(np.float64)
        assert np.all((xx + h).astype(dt).astype(np.float64) == xx + h)
        assert np.all(h > 0)


def test_relative_steps_scale_with_x():
    fd = rg.finite_difference(cubic, {"x": X}, dtype=np.float64, eps=1e-6, relative=True)
    assert np.allclose(fd.steps["x"], 1e-6 * np.abs(X), rtol=1e-6)


def test_result_has_param_keys_shapes_and_dtype():
    p = {"W": np.ones((2, 3), np.float32), "b": np.zeros(2, np.float32)}
    fd = rg.finite_difference(lambda p, d: rg.sum(rg.tanh(p["W"] @ np.ones(3) + p["b"])), p,
                              dtype=np.float32, eps=1e-2)
    assert set(fd) == {"W", "b"} and fd["W"].shape == (2, 3) and fd["W"].dtype == np.float32


def test_stencils_are_consistent():
    for offsets, weights in STENCILS.values():
        assert sum(weights) == 0 and sum(w * k for w, k in zip(weights, offsets)) == 1


def test_kink_crossings_are_flagged_per_element():
    p = {"x": np.array([0.5, -0.001, 0.3, 0.0004])}
    fd = rg.finite_difference(lambda p, d: rg.sum(rg.relu(p["x"] * 2) * p["x"]), p,
                              dtype=np.float64, eps=1e-2)
    assert ((fd.kinks["x"] >= 0) == np.array([False, True, False, True])).all()


@pytest.mark.parametrize("eps", [0, -1e-3, float("nan"), "x"])
def test_bad_steps_are_refused(eps):
    with pytest.raises(rg.InputError, match="eps"):
        rg.finite_difference(cubic, {"x": X}, eps=eps)


def test_unknown_scheme_is_refused():
    with pytest.raises(rg.InputError, match="scheme"):
        rg.finite_difference(cubic, {"x": X}, scheme="sideways")
