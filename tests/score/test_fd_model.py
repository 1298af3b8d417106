"""The finite-difference error model against refgrad's observed finite differences."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.models import MODELS, in_dtype
from refgrad.score.fd_model import evaluation_noise, fd_model


def _observed(g, exact, dtype, h, scheme):
    fd = rg.finite_difference(g, dtype=dtype, eps=h, scheme=scheme)
    n = np.concatenate([fd[k].astype(np.float64).ravel() for k in exact])
    e = np.concatenate([v.ravel() for v in exact.values()])
    return np.linalg.norm(n - e) / (np.linalg.norm(n) + np.linalg.norm(e))


@pytest.mark.parametrize("scheme, dtype, steps", [
    ("central", np.float64, [1e-7, 1e-5, 1e-3, 1e-2]),
    ("forward", np.float32, [1e-4, 1e-3, 1e-2]),
    ("five_point", np.float64, [1e-3, 1e-2, 1e-1]),
    ("central", np.float16, [1e-2, 3e-2]),
])
def test_predicted_discrepancy_tracks_observed(scheme, dtype, steps):
    m = MODELS["lstm_classifier"].configure(hidden=3, steps=4)
    p, d = (in_dtype(a, dtype) for a in m.example(2))
    g = rg.trace(m.loss, p, d)
    exact = rg.reference(g).grad_as(np.float64)
    model = fd_model(g, exact, dtype, scheme, user_steps=False)
    for h in steps:
        obs, pred = _observed(g, exact, dtype, h, scheme), model.discrepancy(h)
        assert 1 / 4 <= obs / pred <= 4, (h, obs, pred)


def test_noise_scales_with_the_dtype():
    m = MODELS["mse"]
    p, d = m.example(0)
    g = rg.trace(m.loss, in_dtype(p, np.float16), in_dtype(d, np.float16))
    s16, s32, s64 = (evaluation_noise(g, dt) for dt in (np.float16, np.float32, np.float64))
    assert s64 < s32 < s16 and s32 / s64 > 1e6


def test_complex_step_has_no_cancellation():
    m = MODELS["lstm_classifier"].configure(hidden=3, steps=3)
    p, d = m.example(0)
    g = rg.trace(m.loss, p, d)
    exact = rg.reference(g).grad_as(np.float64)
    fd = rg.finite_difference(g, eps=1e-20, scheme="complex")
    for k in exact:
        assert np.allclose(fd[k], exact[k], rtol=1e-13, atol=1e-15)
    assert fd_model(g, exact, np.float64, "complex").discrepancy(1e-20) < 1e-14
