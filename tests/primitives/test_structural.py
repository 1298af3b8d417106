"""Structural VJPs against high-precision central differences of the forward pass alone."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from tests.oracles import central_difference, rel_close

rng = np.random.default_rng(3)
W = rng.standard_normal((3, 4))
V = rng.standard_normal((4, 2))
x = rng.standard_normal(4)
IMG = rng.standard_normal((1, 2, 5, 5))

CASES = {
    "matmul 2x2": (lambda p, d: rg.sum(rg.tanh(p["W"] @ p["V"])), {"W": W, "V": V}),
    "matmul 2x1": (lambda p, d: rg.sum(rg.tanh(p["W"] @ p["x"])), {"W": W, "x": x}),
    "matmul 1x2": (lambda p, d: rg.sum(rg.tanh(p["x"] @ p["V"])), {"x": x, "V": V}),
    "matmul 1x1": (lambda p, d: rg.tanh(p["x"] @ p["x"]), {"x": x}),
    "matmul 3d@2d": (lambda p, d: rg.sum(rg.tanh(rg.reshape(p["W"], (3, 2, 2)) @ p["V"][:2])),
                     {"W": W, "V": V}),
    "sum axis": (lambda p, d: rg.sum(rg.tanh(rg.sum(p["W"], axis=1)) * np.arange(3.0)), {"W": W}),
    "mean keepdims": (lambda p, d: rg.sum(rg.exp(p["W"] - rg.mean(p["W"], 0, keepdims=True))),
                      {"W": W}),
    "max axis": (lambda p, d: rg.sum(rg.max(p["W"], axis=1) ** 2), {"W": W}),
    "max all": (lambda p, d: rg.max(p["W"] * p["W"]), {"W": W}),
    "reshape/transpose": (lambda p, d: rg.sum(rg.tanh(p["W"].T.reshape(2, 6)) * np.arange(12.0)
                                              .reshape(2, 6)),
                          {"W": W}),
    "getitem basic": (lambda p, d: rg.sum(rg.sigmoid(p["W"][1:, ::2]) * p["W"][0, 1]), {"W": W}),
    "getitem int arrays": (lambda p, d: rg.sum(p["W"][np.array([0, 2, 2]), np.array([1, 1, 3])] ** 3),
                           {"W": W}),
    "getitem newaxis/ellipsis": (lambda p, d: rg.sum(rg.tanh(p["W"][None, ..., 1]) * p["x"][:3]),
                                 {"W": W, "x": x}),
    "concatenate": (lambda p, d: rg.sum(rg.tanh(rg.concatenate([p["W"], p["V"].T], 0)) ** 2),
                    {"W": W, "V": V}),
    "stack": (lambda p, d: rg.sum(rg.stack([p["x"], p["x"] ** 2], axis=1) @ np.ones(2)), {"x": x}),
    "broadcast": (lambda p, d: rg.sum(rg.tanh(p["W"] + p["x"]) * p["W"][:, :1]), {"W": W, "x": x}),
    "pad": (lambda p, d: rg.sum(rg.tanh(rg.pad(p["W"], [(1, 0), (2, 1)]) + 0.5) ** 2), {"W": W}),
    "logsumexp/softmax": (lambda p, d: rg.sum(rg.softmax(p["W"], 1) * p["W"]) + rg.logsumexp(p["x"]),
                          {"W": W, "x": x}),
    "conv-like im2col": (lambda p, d: rg.sum(rg.tanh(rg.pad(p["I"], [(0, 0), (0, 0), (1, 1), (1, 1)])
                                                       [:, :, np.arange(3)[:, None], np.arange(3)])),
                         {"I": IMG}),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_vjp_matches_high_precision_differences(name):
    fn, params = CASES[name]
    g = rg.trace(fn, params)
    b = get_backend("mp", 300)
    grads = backward(g, b, forward(g, b))
    for k, arr in params.items():
        for idx in [tuple(int(i) for i in np.unravel_index(j, arr.shape)) for j in range(0, arr.size, 3)]:
            want = central_difference(g, k, idx)
            assert rel_close(grads[k][idx], want, 40), (name, k, idx)


def test_float_backends_follow_the_dtype():
    fn, params = CASES["logsumexp/softmax"]
    g = rg.trace(fn, params)
    for dt in ("float16", "float32", "float64"):
        b = get_backend(dt)
        vals = forward(g, b)
        grads = backward(g, b, vals)
        assert vals[g.output].dtype == np.dtype(dt)
        assert all(v.dtype == np.dtype(dt) for v in grads.values())


def test_max_ties_share_the_gradient():
    g = rg.trace(lambda p, d: rg.max(p["x"]), {"x": np.array([1.0, 3.0, 3.0])})
    b = get_backend("mp", 100)
    grad = backward(g, b, forward(g, b))["x"]
    assert [float(v) for v in grad] == [0.0, 0.5, 0.5]
