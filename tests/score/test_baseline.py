"""Precision baseline and error scale: what round-off can do, never less than what it does."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.models import MODELS, in_dtype
from refgrad.score.baseline import absolute_gradient, baseline, check_representable, weighted_depth


def test_weighted_depth_counts_reductions_by_log2():
    g = rg.trace(lambda p, d: rg.sum(rg.tanh(p["x"])), {"x": np.ones(8)})
    assert weighted_depth(g) == pytest.approx(1 + 1 + np.log2(8))


def test_absolute_gradient_sees_the_magnitudes_that_cancel():
    x = np.array([1.0, 2.0, -0.5])
    g = rg.trace(lambda p, d: rg.sum(p["x"] * 3.0 - p["x"] * 3.0000001), {"x": x})
    absg = absolute_gradient(g)["x"]
    assert np.allclose(absg, 6.0000001)  # |3| + |-3.0000001| though the gradient is -1e-7


def test_representability_is_checked_with_a_clear_message():
    g = rg.trace(lambda p, d: rg.sum(p["x"] ** 2), {"x": np.array([0.1, 0.5])})
    with pytest.raises(rg.InputError, match="param 'x'.*not float32.*\\(0,\\)"):
        check_representable(g, np.float32)
    check_representable(g, np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["lstm_classifier", "cnn", "mse"])
def test_the_dtype_baseline_stays_within_the_error_scale(name, dtype):
    m = MODELS[name]
    p, d = (in_dtype(a, dtype) for a in m.example(1))
    g = rg.trace(m.loss, p, d)
    ref = rg.reference(g)
    bl = baseline(g, ref.grad, ref.value, dtype)
    for k in p:
        assert np.all(bl.error[k] <= bl.scale[k]), k
        assert bl.grad[k].dtype == np.dtype(dtype)
    u = np.finfo(dtype).eps / 2
    assert bl.u == u and bl.value_error <= 64 * u * abs(float(ref.value)) + 1e-30
