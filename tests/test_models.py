"""Seed models: deterministic examples, documented shapes, and losses/gradients vs PyTorch."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, Model, cnn, lstm_classifier, mlp
from refgrad.trace import trace


def run(model: Model, params, data, backend=("mp", 100)):
    g = trace(model.loss, params, data)
    b = get_backend(*backend)
    vals = forward(g, b)
    return vals[g.output], backward(g, b, vals)


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def against_torch(torch, model, torch_loss, rtol=1e-12, backend=("mp", 100)):
    """model's loss/gradient at its example vs torch float64 autograd on the same numbers."""
    params, data = model.example(0)
    val, grads = run(model, params, data, backend)
    ts = {k: torch.tensor(v, requires_grad=True) for k, v in params.items()}
    out = torch_loss(ts, {k: torch.tensor(v) for k, v in data.items()})
    out.backward()
    np.testing.assert_allclose(float(val), out.item(), rtol=rtol)
    for k in model.wrt:
        want = ts[k].grad.numpy()
        np.testing.assert_allclose(grads[k].astype(float), want, rtol=rtol,
                                   atol=rtol * np.abs(want).max())


def test_registry_names_and_documentation():
    assert set(MODELS) == {"mse", "lstm_classifier", "cnn", "mlp"}
    for name, m in MODELS.items():
        assert m.name == name and m.description and set(m.wrt) <= set(m.params)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_example_is_deterministic_and_matches_documented_shapes(name):
    m = MODELS[name]
    p0, d0 = m.example(0)
    p0b, d0b = m.example(0)
    p1, _ = m.example(1)
    assert {k: v.shape for k, v in p0.items()} == m.params
    assert {k: v.shape for k, v in d0.items()} == m.data
    for k in p0:
        assert p0[k].dtype == np.float64 and np.array_equal(p0[k], p0b[k])
        assert not np.array_equal(p0[k], p1[k])
    for k in d0:
        assert np.array_equal(d0[k], d0b[k])


@pytest.mark.parametrize("name", sorted(MODELS))
def test_float64_loss_and_gradient_are_finite(name):
    m = MODELS[name]
    val, grads = run(m, *m.example(3), backend=("float64",))
    assert np.isfinite(val)
    for k in m.wrt:
        assert grads[k].shape == m.params[k] and np.isfinite(grads[k]).all()
        assert np.abs(grads[k]).max() > 0


def test_mse_model_gradient_is_exactly_x_minus_t_over_64():
    """The third user story: dL/dX = (X − T)/(r·n), exact at the float64 inputs."""
    m = MODELS["mse"]
    params, data = m.example(0)
    _, grads = run(m, params, data, backend=("mp", 200))
    flat = [a.reshape(-1) for a in (grads["X"], params["X"], data["T"])]
    for got, x, t in zip(*flat, strict=True):
        sign, man, exp, _ = got._mpf_  # the exact binary value (mpf(got) would round)
        assert (-1) ** sign * Fraction(int(man)) * Fraction(2) ** int(exp) == \
            (Fraction(x) - Fraction(t)) / 64


def test_lstm_classifier_matches_torch(torch):
    F = torch.nn.functional

    def loss(t, d):
        m = torch.nn.LSTM(5, 5, dtype=torch.float64)
        w = {f"{k}_l0": t[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        hs, _ = torch.func.functional_call(m, w, (d["xs"],))
        return F.cross_entropy(F.linear(hs, t["W_out"], t["b_out"]), d["labels"], reduction="sum")

    against_torch(torch, MODELS["lstm_classifier"], loss)


def test_lstm_classifier_options():
    m = lstm_classifier().configure(hidden=3, steps=4, inputs=2, classes=6)
    assert m.params["weight_ih"] == (12, 2) and m.data == {"xs": (4, 2), "labels": (4,)}
    p, d = m.example()
    assert {k: v.shape for k, v in p.items()} == m.params and d["labels"].max() < 6
    val, _ = run(m, p, d, backend=("float64",))
    assert np.isfinite(val)
    with pytest.raises(ValueError, match="no option"):
        m.configure(layers=2)


def test_cnn_matches_torch(torch):
    F = torch.nn.functional

    def loss(t, d):
        a1 = F.relu(F.conv2d(d["x"], t["w1"], t["b1"]))
        a2 = F.relu(F.conv2d(a1, t["w2"], t["b2"]))
        return F.cross_entropy(F.linear(torch.flatten(a2, 1), t["W3"], t["b3"]), d["label"])

    m = MODELS["cnn"]
    assert m.params["W3"] == (5, 64)
    against_torch(torch, m, loss)
    against_torch(torch, cnn(size=6, channels=2, classes=3), loss)


def _torch_mlp(torch, n):
    F = torch.nn.functional

    def loss(t, d):
        a = d["X"]
        for k in range(1, n + 1):
            a = F.linear(a, t[f"W{k}"], t[f"b{k}"])
            a = torch.tanh(a) if k < n else a
        return F.cross_entropy(a, d["labels"])

    return loss


def test_mlp_float64_matches_torch(torch):
    """The full 64→128→128→10 model on the float64 backend (mp is slow for its size)."""
    m = MODELS["mlp"]
    against_torch(torch, m, _torch_mlp(torch, 3), rtol=1e-10, backend=("float64",))


def test_small_mlp_exact_matches_torch(torch):
    against_torch(torch, mlp(batch=3, sizes=(4, 6, 5, 3)), _torch_mlp(torch, 3))
