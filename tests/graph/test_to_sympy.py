"""to_sympy: one sympy expression per graph, checked against the mp forward and reverse passes.

CASES use every primitive in the registry (a test enforces it); test_taylor reuses them.
"""

import mpmath
import numpy as np
import pytest
import sympy as sp

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.to_sympy import SympyBackend, element_symbols, exact, point, to_sympy
from refgrad.primitives import REGISTRY

rng = np.random.default_rng(7)
X = np.array([0.75, -1.25])
Y = np.array([1.5, 0.625])
A = rng.standard_normal((2, 3))
B = rng.standard_normal((3, 2))
V = rng.standard_normal(3)
M = rng.standard_normal((2, 2))
C = rng.standard_normal((2, 3))
LABELS = np.array([2, 0])
XY = {"x": X, "y": Y}

def _arithmetic(p, d):
    x, y = p["x"], p["y"]
    return rg.sum(x * y - x / y + (-x) + rg.square(y) * d["c"])


def _exp_log(p, d):
    x, y = p["x"], p["y"]
    return rg.sum(rg.exp(x) * rg.log(y) + rg.log1p(x * x) + rg.sqrt(y))


def _powers(p, d):
    y = p["y"]
    return rg.sum(rg.power(y, 1.5) + rg.power(y, p["x"]) + y ** 3 + 1 / y ** 2)


def _kinks(p, d):
    x, y = p["x"], p["y"]
    return rg.sum(rg.relu(x) + rg.abs(x) * y + rg.maximum(x, y - 1) * rg.minimum(x, 1 - y))


def _matmul_vectors(p, d):
    u = p["A"] @ p["v"]
    return rg.sigmoid(u @ (p["v"] @ p["B"])) + rg.sum(rg.tanh(u))


def _reductions(p, d):
    a = p["A"]
    return (rg.sum(rg.sum(a, axis=1) ** 2)
            + rg.sum(rg.tanh(rg.sum(a, axis=0, keepdims=True) * a))
            + rg.sum(rg.max(a, axis=1) * np.array([1.0, 2.0])) + rg.max(a * a)
            + rg.sum(rg.exp(rg.max(rg.reshape(a, (2, 1, 3)), axis=(0, 2), keepdims=True))))


def _layout(p, d):
    a = p["A"]
    t = rg.transpose(rg.reshape(a, (1, 2, 3)), (2, 0, 1))
    s = rg.broadcast_to(t, (2, 3, 1, 2))[1, ::-1, :, 1]
    return rg.sum(rg.tanh(s) * a.T[:, :1]) + rg.sum(rg.tanh(a + p["v"]))


def _indexing(p, d):
    a = p["A"]
    split = rg.reshape(a, (2, 3, 1))[np.array([0, 1]), :, np.array([0, 0])]  # advanced, split
    return (-rg.sum(rg.log_softmax(a, axis=1)[np.arange(2), LABELS])
            + rg.sum(rg.tanh(split * d["C"])) + rg.sum(rg.square(a[None, 0, 1:])))


def _joins(p, d):
    x, a, c = p["x"], p["A"], d["c"]
    cat = rg.concatenate([x, a[0], c], axis=0)
    st = rg.stack([x, x * p["y"], c], axis=1)
    pad = rg.pad(a, [(1, 0), (0, 2)])
    return (rg.sum(rg.tanh(cat) * np.arange(1.0, 8.0))
            + rg.sum(rg.sigmoid(st) * np.arange(6.0).reshape(2, 3))
            + rg.sum(rg.exp(pad * 0.5) * np.arange(15.0).reshape(3, 5)))


def _softmax(p, d):
    a = p["A"]
    return rg.sum(rg.softmax(a, axis=1) * d["C"]) + rg.sum(rg.square(rg.logsumexp(a, axis=0)))


CASES = {  # name -> (fn, params, data)
    "arithmetic": (_arithmetic, XY, {"c": np.array([0.5, -3.0])}),
    "exp/log/sqrt": (_exp_log, XY, None),
    "activations": (lambda p, d: rg.sum(rg.tanh(p["x"]) * rg.sigmoid(p["y"])
                                        + rg.softplus(p["x"] - p["y"])), XY, None),
    "powers": (_powers, XY, None),
    "kinks": (_kinks, XY, None),
    "matmul 2d@2d": (lambda p, d: rg.sum(rg.tanh(p["A"] @ p["B"])), {"A": A, "B": B}, None),
    "matmul 2d@1d, 1d@2d, 1d@1d": (_matmul_vectors, {"A": A, "B": B, "v": V}, None),
    "matmul 3d@2d": (lambda p, d: rg.sum(rg.tanh(rg.reshape(p["A"], (3, 1, 2)) @ p["M"])),
                     {"A": A, "M": M}, None),
    "reductions": (_reductions, {"A": A}, None),
    "layout": (_layout, {"A": A, "v": V}, None),
    "indexing": (_indexing, {"A": A}, {"C": C}),
    "concatenate/stack/pad": (_joins, {"x": X, "y": Y, "A": A}, {"c": np.array([0.25, -0.5])}),
    "softmax/logsumexp": (_softmax, {"A": A}, {"C": C}),
    "stop_gradient": (lambda p, d: rg.sum(p["x"] * rg.stop_gradient(rg.tanh(p["x"] * p["y"]))),
                      XY, None),
}
FREEZE = {"stop_gradient"}  # a user's stop_gradient: engine derivatives are those with cuts frozen
MP = get_backend("mp", 200)


def graph_of(name):
    fn, params, data = CASES[name]
    return rg.trace(fn, params, data)


def num(expr, subs):
    """An exact sympy expression at the exact point, as mpf with 60 correct digits."""
    return mpmath.mp.make_mpf(sp.Float(sp.sympify(expr).xreplace(subs).evalf(60), 60)._mpf_)


def mpf(v):
    """An engine number (mpf, MPFR, float) or sympy number as mpf, exactly."""
    if isinstance(v, sp.Basic):
        return num(v, {})
    if isinstance(v, mpmath.mpf):
        return v  # mpmath.mpf(v) would round it to the global 53 bits
    if isinstance(v, (float, int)):
        return num(exact(v), {})
    return MP.to_mpf(np.asarray(v, dtype=object))[()]


def close(a, b, digits=50):
    """|a - b| <= 10^-digits · max(|b|, 1), with a and b converted exactly."""
    a, b = mpf(a), mpf(b)
    with mpmath.workprec(400):
        return abs(a - b) <= mpmath.mpf(10) ** -digits * max(abs(b), 1)


def test_cases_use_every_primitive():
    used = {n.op for name in CASES for n in graph_of(name).nodes if not n.is_leaf}
    assert used == set(REGISTRY), f"not covered: {set(REGISTRY) - used}"


@pytest.mark.parametrize("name", list(CASES))
def test_value_equals_mp_forward(name):
    g = graph_of(name)
    expr, syms = to_sympy(g, freeze_cuts=name in FREEZE)
    assert expr.free_symbols <= {s for a in syms.values() for s in a.ravel()}
    assert close(num(expr, point(g, syms)), forward(g, MP)[g.output][()])


@pytest.mark.parametrize("name", list(CASES))
def test_sympy_gradient_equals_reverse_mode(name):
    g = graph_of(name)
    expr, syms = to_sympy(g, freeze_cuts=name in FREEZE)
    subs = point(g, syms)
    grad = backward(g, MP, forward(g, MP))
    for k, arr in syms.items():
        for idx in np.ndindex(*arr.shape):
            assert close(num(sp.diff(expr, arr[idx]), subs), grad[k][idx]), (k, idx)


def test_symbol_names_and_data_modes():
    g = graph_of("arithmetic")
    expr, syms = to_sympy(g)
    assert set(syms) == {"x", "y"} and str(syms["x"][1]) == "x[1]" and syms["x"][1].is_real
    assert "c" not in {str(s)[0] for s in expr.free_symbols}
    expr_d, syms_d = to_sympy(g, data_symbolic=True)
    assert set(syms_d) == {"x", "y", "c"}
    assert sp.simplify(expr_d.xreplace({syms_d["c"][0]: exact(0.5), syms_d["c"][1]: exact(-3.0)})
                       - expr) == 0
    assert str(element_symbols("W", (2, 2))[0, 1]) == "W[0,1]"
    assert str(element_symbols("s", ())[()]) == "s"


def test_float_inputs_are_exact_binary_rationals():
    assert exact(0.1) == sp.Rational(3602879701896397, 36028797018963968)
    assert exact(mpmath.mpf(-0.375)) == sp.Rational(-3, 8)
    g = rg.trace(lambda p, d: rg.sum(p["w"] * 0.1), {"w": np.array([1.0])})
    expr, syms = to_sympy(g)
    assert sp.diff(expr, syms["w"][0]) == sp.Rational(3602879701896397, 36028797018963968)


def test_piecewise_point_versus_keep():
    g = graph_of("kinks")
    chosen, syms = to_sympy(g)
    kept, _ = to_sympy(g, piecewise="keep")
    assert not chosen.has(sp.Piecewise, sp.Abs) and kept.has(sp.Piecewise) and kept.has(sp.Abs)
    subs = point(g, syms)
    assert close(num(kept, subs), num(chosen, subs))
    # the chosen expression is the branch at the point: elsewhere it may differ, `keep` does not
    far = {s: -v for s, v in subs.items()}
    f_far = forward(g, MP, {k: -np.asarray(v) for k, v in CASES["kinks"][1].items()})[g.output][()]
    assert close(num(kept, far), f_far) and not close(num(chosen, far), f_far)


def test_kink_conventions_at_the_point():
    """At a kink the chosen branch reproduces the engine's subgradient (relu'(0)=0, ties 1/2)."""
    def fn(p, d):
        x = p["x"]
        return rg.relu(x[0]) + rg.abs(x[0]) + rg.maximum(x[1], 2 * x[1] - 1)

    g = rg.trace(fn, {"x": np.array([0.0, 1.0])})
    expr, syms = to_sympy(g)
    grad = backward(g, MP, forward(g, MP))["x"]
    assert [sp.diff(expr, s) for s in syms["x"]] == [0, sp.Rational(3, 2)]
    assert [float(v) for v in grad] == [0.0, 1.5]


def test_max_ties_share_equally_and_numeric_compare():
    g = rg.trace(lambda p, d: rg.max(p["w"]), {"w": np.array([2.0, 2.0, -1.0])})
    expr, syms = to_sympy(g)
    assert sp.expand(expr - (syms["w"][0] + syms["w"][1]) / 2) == 0
    w = syms["w"]
    sb = SympyBackend({}, {w[0]: sp.Integer(1), w[1]: sp.Integer(2), w[2]: sp.Integer(3)})
    assert sb.compare(">", np.array([w[0] + w[1]]), np.array([w[2]])).tolist() == [False]
    assert sb.compare(">=", np.array([w[0] * w[2]]), np.array([w[2]])).tolist() == [True]


def test_freeze_cuts_matches_cut_gradient():
    g = graph_of("stop_gradient")
    plain, syms = to_sympy(g)
    frozen, _ = to_sympy(g, freeze_cuts=True)
    subs = point(g, syms)
    grad = backward(g, MP, forward(g, MP))["x"][0]
    assert close(num(plain, subs), num(frozen, subs))
    assert close(num(sp.diff(frozen, syms["x"][0]), subs), grad)
    assert not close(num(sp.diff(plain, syms["x"][0]), subs), grad)


def test_point_moves_with_params():
    g = graph_of("kinks")
    expr, syms = to_sympy(g, params={"x": -X, "y": Y})
    subs = point(g, syms, {"x": -X, "y": Y})
    assert close(num(expr, subs), forward(g, MP, {"x": -X, "y": Y})[g.output][()])


def test_bad_piecewise_mode():
    with pytest.raises(ValueError, match="piecewise"):
        to_sympy(graph_of("kinks"), piecewise="smooth")
