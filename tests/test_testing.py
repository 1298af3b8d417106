"""assert_gradient_close: passes for a correct gradient in its dtype, fails with a useful message."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS
from refgrad.testing import assert_gradient_close

MSE = MODELS["mse"]
LSTM = MODELS["lstm_classifier"].configure(hidden=3, steps=4, inputs=2, classes=3)


def as32(arrays):
    return {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in arrays.items()}


def float32_backprop(model, p, d):
    """A correct float32 implementation: refgrad's own graph run in float32."""
    g = rg.trace(model.loss, p, d)
    b = get_backend("float32")
    return backward(g, b, forward(g, b))


def test_passes_for_correct_float32_gradients():
    p, d = (as32(a) for a in MSE.example(0))
    assert_gradient_close({"X": (p["X"] - d["T"]) / np.float32(64)}, MSE.loss, p, d)
    assert_gradient_close((p["X"] - d["T"]) / np.float32(64), MSE.loss, p, d)  # one param: bare array
    p, d = (as32(a) for a in LSTM.example(0))
    assert_gradient_close(float32_backprop(LSTM, p, d), LSTM.loss, p, d, dtype=np.float32)


def test_float32_round_off_is_not_accepted_as_float64():
    p, d = (as32(a) for a in MSE.example(0))
    g32 = float32_backprop(MSE, p, d)
    ref = rg.reference(MSE.loss, p, d).grad_as(np.float64)
    assert not np.array_equal(g32["X"].astype(np.float64), ref["X"])
    with pytest.raises(AssertionError, match="verdict: bug"):
        assert_gradient_close({"X": g32["X"].astype(np.float64)}, MSE.loss, p, d,
                              dtype=np.float64)


def test_failure_names_tensor_worst_elements_verdict_and_fingerprint():
    p, d = (as32(a) for a in MSE.example(0))
    wrong = (p["X"] - d["T"]) / np.float32(8)  # 1/n instead of 1/(r·n): the third story's slip
    with pytest.raises(AssertionError) as e:
        assert_gradient_close(wrong, MSE.loss, p, d, err_msg="my mse backprop")
    msg = str(e.value)
    assert msg.startswith("my mse backprop\n")
    assert "tensor 'X' (8, 8): 64 of 64" in msg and "verdict: bug" in msg and "float32" in msg
    rows = [ln.split() for ln in msg.splitlines() if ln.strip().startswith("(")]
    assert len(rows) == 5  # the five worst: index, exact, actual, error, scale
    idx = tuple(int(x) for x in " ".join(rows[0][:2]).strip("()").split(","))
    exact, actual, error = float(rows[0][2]), float(rows[0][3]), float(rows[0][4])
    assert actual == pytest.approx(float(wrong[idx]), rel=1e-6)
    assert exact == pytest.approx(float(wrong[idx]) / 8, rel=1e-6)
    assert error == pytest.approx(abs(actual - exact), rel=1e-2)
    assert "scale: [X] your gradient is 8 × the exact one" in msg


def test_lstm_fingerprint_in_message():
    p, d = LSTM.example(0)
    g = rg.reference(LSTM.loss, p, d).grad_as(np.float64)
    g["weight_hh"] = -g["weight_hh"]
    with pytest.raises(AssertionError, match=r"(?s)tensor 'weight_hh'.*sign: \[weight_hh\]"):
        assert_gradient_close(g, LSTM.loss, p, d)


def test_mismatched_gradients_fail_as_assertions():
    p, d = MSE.example(0)
    with pytest.raises(AssertionError, match="shape"):
        assert_gradient_close({"X": np.zeros((8, 7))}, MSE.loss, p, d)
    with pytest.raises(AssertionError, match="missing"):
        assert_gradient_close({"W": np.zeros((8, 8))}, MSE.loss, p, d)
