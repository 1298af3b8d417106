"""Mutation tests through check(): for each seed model, plant each bug a fingerprint names and
assert the verdict and the kind; correct float16/32/64 implementations are never a bug.

Planted candidates are built independently of the fingerprint engine: by numpy transforms of
the exact gradient, or by the mp reverse pass on a cut graph / with a wrong local derivative.
"""

import functools

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.precision import round_array
from refgrad.models import MODELS, in_dtype

SMALL = {  # the seed architectures at sizes that keep the suite fast
    "mse": MODELS["mse"],
    "lstm_classifier": MODELS["lstm_classifier"],
    "cnn": MODELS["cnn"],
    "mlp": MODELS["mlp"].configure(batch=4, sizes=(8, 6, 6, 3)),
}


@functools.cache
def _case(name):
    m = SMALL[name]
    p, d = (in_dtype(a, np.float32) for a in m.example(3))
    g = rg.trace(m.loss, p, d)
    return name, m, g, rg.reference(g).grad_as(np.float32)


@pytest.fixture(params=sorted(SMALL))
def case(request):
    return _case(request.param)


def _models_with(pred):
    """The seed models whose graph has the structure a planted bug needs."""
    return [n for n in sorted(SMALL) if pred(_case(n)[2], _case(n)[3])]


def _mp_grad(graph, **kw):
    b = get_backend("mp", 120)
    grads = backward(graph, b, forward(graph, b), **kw)
    return {k: round_array(v, np.float32) for k, v in grads.items()}


def _kinds(report):
    return {f.kind for f in report.findings if f.candidate == "analytic"}


def _verdict_and_kind(g, cand, kind):
    r = rg.check(g, analytic=cand, eps=1e-2)
    assert r.analytic_verdict == "bug", r.summary
    assert kind in _kinds(r), (kind, [str(f) for f in r.findings])
    return r


@pytest.mark.parametrize("kind", ["scale", "sign", "zero"])
def test_planted_simple_bugs(case, kind):
    name, m, g, exact = case
    first = next(iter(exact))
    cand = dict(exact)
    if kind == "scale":
        cand = {k: v / np.float32(4) for k, v in exact.items()}
    elif kind == "sign":
        cand[first] = -exact[first]
    else:
        cand[first] = np.zeros_like(exact[first])
    _verdict_and_kind(g, cand, kind)


def _square(exact):
    return [k for k, v in exact.items() if v.ndim == 2 and v.shape[0] == v.shape[1]]


@pytest.mark.parametrize("name", _models_with(lambda g, ex: _square(ex)))
def test_planted_transpose(name):
    name, m, g, exact = _case(name)
    square = _square(exact)
    cand = dict(exact, **{square[0]: exact[square[0]].T.copy()})
    _verdict_and_kind(g, cand, "transpose")


def _has(g, op):
    return [n.id for n in g.nodes if n.op == op]


@pytest.mark.parametrize("name", _models_with(lambda g, ex: _has(g, "tanh") or _has(g, "relu")))
def test_planted_wrong_local_derivative(name):
    """tanh' taken on the output (tanh models) or relu' = 1 (the CNN), in the mp reverse pass."""
    name, m, g, exact = _case(name)
    tanh, relu = _has(g, "tanh"), _has(g, "relu")
    if tanh:
        wrong = {i: (lambda b, p, xs, out: 1 - b.tanh(out) * b.tanh(out)) for i in tanh}
    else:
        wrong = {i: (lambda b, p, xs, out: b.const(1) + 0 * out) for i in relu}
    _verdict_and_kind(g, _mp_grad(g, local=wrong), "wrong_local_derivative")


def test_planted_missing_recurrent_path():
    """Only the LSTM has a recurrent path."""
    name, m, g, exact = _case("lstm_classifier")
    # the forget-gate product f * c[t-1]: cut its c[t-1] input at every step
    muls = [n for n in g.nodes if n.op == "mul" and any(g.nodes[i].op == "add" for i in n.inputs)]
    edges = [(n.id, p) for n in muls for p, i in enumerate(n.inputs) if g.nodes[i].op == "add"]
    assert edges
    _verdict_and_kind(g, _mp_grad(g.cut(edges)), "missing_path")


def test_planted_index_shift():
    """Only the LSTM has a time axis."""
    name, m, g, exact = _case("lstm_classifier")
    b = get_backend("mp", 120)
    vals = forward(g, b)
    xs = g.data["xs"]
    steps = [n for n in g.nodes if n.op == "getitem" and n.inputs == (xs,)]
    shifted = list(vals)
    for n in steps:  # the backward pass reads x[t+1] where it should read x[t]
        t = n.attrs["index"][0]
        nxt = [s for s in steps if s.attrs["index"][0] == t + 1]
        shifted[n.id] = vals[nxt[0].id] if nxt else b.zeros(n.shape)
    cand = {k: round_array(v, np.float32) for k, v in backward(g, b, shifted).items()}
    _verdict_and_kind(g, cand, "index_shift")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_correct_implementations_are_never_bugs(case, dtype):
    name, m, _, _ = case
    p, d = (in_dtype(a, dtype) for a in m.example(3))
    g = rg.trace(m.loss, p, d)
    b = get_backend(np.dtype(dtype).name)
    r = rg.check(g, analytic=backward(g, b, forward(g, b)), dtype=dtype, eps=1e-2)
    assert r.analytic_verdict == "correct", r.summary
    assert not _kinds(r)
