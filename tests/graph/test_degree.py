"""The proved polynomial degree, checked against sympy.diff of the whole expression."""

import numpy as np
import pytest
import sympy as sp

import refgrad as rg
from refgrad.graph.degree import polynomial_degree, vanishing_order
from refgrad.graph.to_sympy import to_sympy
from refgrad.models import MODELS

P = {"x": np.array([0.5, -1.5, 2.0]), "W": np.array([[1.0, 2.0], [0.5, -1.0], [3.0, 1.0]])}
CASES = [
    (lambda p, d: rg.sum((p["x"] - 1) ** 2) / 6, 2),
    (lambda p, d: rg.sum((p["x"] @ p["W"]) ** 3), 6),
    (lambda p, d: rg.mean(p["x"] * p["x"] * p["x"]) + rg.sum(p["W"]), 3),
    (lambda p, d: rg.sum(rg.concatenate([p["x"], p["W"][:, 0]]) ** 2 / 3.0), 2),
    (lambda p, d: rg.sum(p["x"] / 4.0 - p["W"].T[0] * 2), 1),
    (lambda p, d: rg.sum(rg.tanh(p["x"])), None),
    (lambda p, d: rg.sum(rg.relu(p["x"]) ** 2), None),
    (lambda p, d: rg.sum(1 / p["x"]), None),
]


@pytest.mark.parametrize("k", range(len(CASES)))
def test_degree_agrees_with_sympy(k):
    fn, deg = CASES[k]
    g = rg.trace(fn, P)
    assert polynomial_degree(g) == deg
    expr, syms = to_sympy(g, piecewise="keep")
    flat = [s for arr in syms.values() for s in np.asarray(arr).ravel()]
    if deg is None:
        assert sp.Poly(sp.expand(expr), *flat).total_degree() if expr.is_polynomial(*flat) else True
        assert not expr.is_polynomial(*flat)
    else:
        assert expr.is_polynomial(*flat)
        assert sp.Poly(sp.expand(expr), *flat).total_degree() == deg
        assert vanishing_order(g) == deg + 1


def test_mse_model_is_quadratic_so_third_derivatives_vanish():
    m = MODELS["mse"]
    p, d = m.example(0)
    g = rg.trace(m.loss, p, d)
    assert polynomial_degree(g) == 2
    expr, syms = to_sympy(g)
    x = syms["X"][0, 0]
    assert sp.diff(expr, x, 3) == 0
