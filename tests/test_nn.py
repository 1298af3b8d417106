"""Layers against PyTorch float64 (values and autograd gradients) and hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refgrad import nn
from refgrad.differentiate.reverse import backward
from refgrad.errors import ShapeError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.trace import ops as rg
from refgrad.trace import trace

torch = pytest.importorskip("torch")
F = torch.nn.functional


def reference(fn, params, data=None, prec=100):
    """Loss and gradient from the mp backend, rounded to float64."""
    g = trace(fn, params, data or {})
    b = get_backend("mp", prec)
    vals = forward(g, b)
    grads = backward(g, b, vals)
    return float(vals[g.output]), {k: v.astype(np.float64) for k, v in grads.items()}


def close(a, b, rtol=1e-12):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=rtol, atol=rtol * max(1.0, float(np.abs(b).max())))


def torch_grads(loss_fn, params):
    """Loss and gradients from torch float64 autograd; loss_fn takes a dict of leaf tensors."""
    ts = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in params.items()}
    out = loss_fn(ts)
    out.backward()
    return out.item(), {k: t.grad.numpy() for k, t in ts.items()}


def check_against_torch(rg_fn, torch_fn, params, data=None):
    loss, grads = reference(rg_fn, params, data)
    tloss, tgrads = torch_grads(torch_fn, params)
    close(loss, tloss)
    for k in params:
        close(grads[k], tgrads[k])


def weighted(y, wts):
    """A loss that weights every output element differently, so every gradient entry matters."""
    return rg.sum(y * wts)


RNG = np.random.default_rng(1234)


def rnd(*shape, scale=1.0):
    return RNG.standard_normal(shape) * scale


# --- dense --------------------------------------------------------------------------------------
@pytest.mark.parametrize("xshape", [(3,), (4, 3), (2, 4, 3)])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_matches_torch_linear(xshape, bias):
    p = {"x": rnd(*xshape), "W": rnd(5, 3)}
    if bias:
        p["b"] = rnd(5)
    wts = rnd(*xshape[:-1], 5)
    check_against_torch(
        lambda q, d: weighted(nn.dense(q["x"], q["W"], q.get("b")), wts),
        lambda t: (F.linear(t["x"], t["W"], t.get("b")) * torch.tensor(wts)).sum(), p)


# --- recurrent ----------------------------------------------------------------------------------
def lstm_params(D, H, scale=0.5):
    return {"weight_ih": rnd(4 * H, D, scale=scale), "weight_hh": rnd(4 * H, H, scale=scale),
            "bias_ih": rnd(4 * H, scale=scale), "bias_hh": rnd(4 * H, scale=scale)}


@pytest.mark.parametrize("batch", [(), (3,)])
def test_lstm_cell_matches_torch(batch):
    D, H = 4, 3
    p = {**lstm_params(D, H), "x": rnd(*batch, D), "h": rnd(*batch, H), "c": rnd(*batch, H)}
    wh, wc = rnd(*batch, H), rnd(*batch, H)

    def ours(q, d):
        h, c = nn.lstm_cell(q["x"], q["h"], q["c"], q["weight_ih"], q["weight_hh"],
                            q["bias_ih"], q["bias_hh"])
        return weighted(h, wh) + weighted(c, wc)

    def theirs(t):
        x, h, c = (t[k] if batch else t[k][None] for k in "xhc")
        h2, c2 = torch.lstm_cell(x, (h, c), t["weight_ih"], t["weight_hh"], t["bias_ih"],
                                 t["bias_hh"])
        return (h2.reshape(*batch, H) * torch.tensor(wh)).sum() + \
            (c2.reshape(*batch, H) * torch.tensor(wc)).sum()

    check_against_torch(ours, theirs, p)


def test_lstm_cell_single_bias_is_torch_with_zero_hh_bias():
    D, H = 3, 2
    p = {**lstm_params(D, H), "x": rnd(D), "h": rnd(H), "c": rnd(H)}
    del p["bias_hh"]
    wh = rnd(H)

    def ours(q, d):
        h, c = nn.lstm_cell(q["x"], q["h"], q["c"], q["weight_ih"], q["weight_hh"],
                            bias=q["bias_ih"])
        return weighted(h, wh) + rg.sum(c)

    def theirs(t):
        zero = torch.zeros(4 * H, dtype=torch.float64)
        h2, c2 = torch.lstm_cell(t["x"][None], (t["h"][None], t["c"][None]), t["weight_ih"],
                                 t["weight_hh"], t["bias_ih"], zero)
        return (h2[0] * torch.tensor(wh)).sum() + c2.sum()

    check_against_torch(ours, theirs, p)


def test_lstm_cell_rejects_two_kinds_of_bias_and_bad_shapes():
    p = {**lstm_params(3, 2), "x": rnd(3), "h": rnd(2), "c": rnd(2)}
    with pytest.raises(ShapeError, match="either bias"):
        trace(lambda q, d: rg.sum(nn.lstm_cell(q["x"], q["h"], q["c"], q["weight_ih"],
                                               q["weight_hh"], q["bias_ih"],
                                               bias=q["bias_hh"])[0]), p)
    with pytest.raises(ShapeError, match="4H"):
        trace(lambda q, d: rg.sum(nn.lstm_cell(q["x"], q["h"], q["c"], q["weight_ih"][:7],
                                               q["weight_hh"])[0]), p)


@pytest.mark.parametrize("batch,initial", [((), False), ((2,), True), ((2,), False)])
def test_lstm_unrolled_matches_torch_lstm(batch, initial):
    T, D, H = 4, 3, 2
    p = lstm_params(D, H)
    p["xs"] = rnd(T, *batch, D)
    if initial:
        p["h0"], p["c0"] = rnd(*batch, H), rnd(*batch, H)
    w_hs, w_h, w_c = rnd(T, *batch, H), rnd(*batch, H), rnd(*batch, H)

    def ours(q, d):
        hs, (h, c) = nn.lstm(q["xs"], q["weight_ih"], q["weight_hh"], q["bias_ih"], q["bias_hh"],
                             q.get("h0"), q.get("c0"))
        assert hs.shape == (T, *batch, H)
        return weighted(hs, w_hs) + weighted(h, w_h) + weighted(c, w_c)

    def theirs(t):
        m = torch.nn.LSTM(D, H, dtype=torch.float64)
        weights = {f"{k}_l0": t[k] for k in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}
        state = (t["h0"][None], t["c0"][None]) if initial else None
        hs, (h, c) = torch.func.functional_call(m, weights, (t["xs"], state))
        return (hs * torch.tensor(w_hs)).sum() + (h[0] * torch.tensor(w_h)).sum() + \
            (c[0] * torch.tensor(w_c)).sum()

    check_against_torch(ours, theirs, p)


@pytest.mark.parametrize("batch", [(), (2,)])
def test_gru_cell_and_unrolled_gru_match_torch(batch):
    T, D, H = 3, 3, 2
    p = {"weight_ih": rnd(3 * H, D), "weight_hh": rnd(3 * H, H), "bias_ih": rnd(3 * H),
         "bias_hh": rnd(3 * H), "xs": rnd(T, *batch, D), "h0": rnd(*batch, H)}
    w_hs, w_h = rnd(T, *batch, H), rnd(*batch, H)
    keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")

    def ours(q, d):
        hs, h = nn.gru(q["xs"], *(q[k] for k in keys), h0=q["h0"])
        one = nn.gru_cell(q["xs"][0], q["h0"], *(q[k] for k in keys))
        return weighted(hs, w_hs) + weighted(h, w_h) + rg.sum(rg.square(one))

    def theirs(t):
        m = torch.nn.GRU(D, H, dtype=torch.float64)
        weights = {f"{k}_l0": t[k] for k in keys}
        hs, h = torch.func.functional_call(m, weights, (t["xs"], t["h0"][None]))
        x0, h0 = (t["xs"][0], t["h0"]) if batch else (t["xs"][0][None], t["h0"][None])
        one = torch.gru_cell(x0, h0, *(t[k] for k in keys))
        return (hs * torch.tensor(w_hs)).sum() + (h[0] * torch.tensor(w_h)).sum() + \
            (one**2).sum()

    check_against_torch(ours, theirs, p)


def test_gru_default_initial_state_is_zero():
    T, N, D, H = 3, 2, 2, 3
    keys = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    p = {"weight_ih": rnd(3 * H, D), "weight_hh": rnd(3 * H, H), "bias_ih": rnd(3 * H),
         "bias_hh": rnd(3 * H), "xs": rnd(T, N, D)}
    w_hs = rnd(T, N, H)

    def theirs(t):
        weights = {f"{k}_l0": t[k] for k in keys}
        hs, _ = torch.func.functional_call(torch.nn.GRU(D, H, dtype=torch.float64), weights,
                                           (t["xs"],))
        return (hs * torch.tensor(w_hs)).sum()

    check_against_torch(lambda q, d: weighted(nn.gru(q["xs"], *(q[k] for k in keys))[0], w_hs),
                        theirs, p)


# --- convolution and pooling --------------------------------------------------------------------
def test_conv2d_tiny_by_hand_is_exact():
    """x = 1..9 (3×3), w = [[1, 2], [3, 4]] → y = [[37, 47], [67, 77]]; L = Σ c·y."""
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    w = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    c = np.array([[[[1, 10], [100, 1000]]]])
    g = trace(lambda q, d: rg.sum(nn.conv2d(q["x"], q["w"]) * c), {"x": x, "w": w})
    b = get_backend("mp", 64)
    vals = forward(g, b)
    assert vals[g.output] == 37 + 470 + 6700 + 77000
    grads = backward(g, b, vals)
    # dL/dw[p,q] = Σ_ij c_ij x[i+p, j+q];  dL/dx[a,b] = Σ_ij c_ij w[a−i, b−j]
    assert grads["w"][0, 0].tolist() == [[5421, 6532], [8754, 9865]]
    assert grads["x"][0, 0].tolist() == [[1, 12, 20], [103, 1234, 2040], [300, 3400, 4000]]


@settings(max_examples=12, deadline=None)
@given(n=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 7),
       w=st.integers(3, 7), kh=st.integers(1, 3), kw=st.integers(1, 3), s=st.integers(1, 2),
       pad=st.integers(0, 1), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_conv2d_random_shapes_match_torch(n, c, o, h, w, kh, kw, s, pad, bias, seed):
    rng = np.random.default_rng(seed)
    p = {"x": rng.standard_normal((n, c, h, w)), "w": rng.standard_normal((o, c, kh, kw))}
    if bias:
        p["b"] = rng.standard_normal(o)
    Ho, Wo = (h + 2 * pad - kh) // s + 1, (w + 2 * pad - kw) // s + 1
    wts = rng.standard_normal((n, o, Ho, Wo))
    check_against_torch(
        lambda q, d: weighted(nn.conv2d(q["x"], q["w"], q.get("b"), stride=s, padding=pad), wts),
        lambda t: (F.conv2d(t["x"], t["w"], t.get("b"), stride=s, padding=pad)
                   * torch.tensor(wts)).sum(), p)


def test_conv2d_unbatched_and_rectangular_stride_padding():
    p = {"x": rnd(2, 6, 5), "w": rnd(3, 2, 3, 2), "b": rnd(3)}
    wts = rnd(3, 3, 6)
    check_against_torch(
        lambda q, d: weighted(nn.conv2d(q["x"], q["w"], q["b"], (2, 1), (1, 1)), wts),
        lambda t: (F.conv2d(t["x"], t["w"], t["b"], stride=(2, 1), padding=(1, 1))
                   * torch.tensor(wts)).sum(), p)


def test_conv2d_shape_errors():
    def conv(q, d):
        return rg.sum(nn.conv2d(q["x"], q["w"]))

    with pytest.raises(ShapeError, match="input channels"):
        trace(conv, {"x": rnd(1, 2, 4, 4), "w": rnd(1, 3, 2, 2)})
    with pytest.raises(ShapeError, match="does not fit"):
        trace(conv, {"x": rnd(1, 1, 2, 2), "w": rnd(1, 1, 3, 3)})
    with pytest.raises(ShapeError, match=r"\(N, C, H, W\)"):
        trace(conv, {"x": rnd(4, 4), "w": rnd(1, 1, 3, 3)})


@pytest.mark.parametrize("kernel,stride,shape", [(2, None, (2, 3, 6, 4)), (3, 1, (1, 2, 5, 5)),
                                                 ((2, 3), (1, 2), (3, 7, 7))])
def test_max_pool2d_matches_torch(kernel, stride, shape):
    p = {"x": rnd(*shape)}
    ref = F.max_pool2d(torch.tensor(p["x"]), kernel, stride)
    wts = rnd(*ref.shape)
    check_against_torch(
        lambda q, d: weighted(nn.max_pool2d(q["x"], kernel, stride), wts),
        lambda t: (F.max_pool2d(t["x"], kernel, stride) * torch.tensor(wts)).sum(), p)


def test_max_pool2d_ties_share_the_gradient():
    """A window of four equal values: each gets 1/4 (PyTorch would give one of them 1)."""
    x = np.ones((1, 1, 2, 2))
    _, grads = reference(lambda q, d: rg.sum(nn.max_pool2d(q["x"], 2)), {"x": x})
    assert (grads["x"] == 0.25).all()


def test_flatten_keeps_batch_and_order():
    x = rnd(2, 3, 2, 2)
    wts = rnd(2, 12)
    check_against_torch(lambda q, d: weighted(nn.flatten(q["x"]), wts),
                        lambda t: (torch.flatten(t["x"], 1) * torch.tensor(wts)).sum(), {"x": x})
