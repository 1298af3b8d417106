"""Mutation tests for bug fingerprints: plant each bug by an independent route, check the kind.

Planted candidates are computed in mp (cut graphs, wrong partials written here by hand, shifted
inputs) and rounded to float32, as a user's float32 code would deliver them; the tolerance is
4 × the round-off scale of the float32 reverse pass plus the candidate's own rounding.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.precision import round_array
from refgrad.models import cnn, lstm_classifier, mlp
from refgrad.score.baseline import baseline
from refgrad.score.fingerprints import fingerprint

MP = get_backend("mp", 96)


class Setup:
    """A model at a float32-representable point: graph, exact gradient (mp and float64), scale."""

    def __init__(self, model, seed=0):
        params, data = model.example(seed)
        f32 = {k: v.astype(np.float32).astype(np.float64) for k, v in params.items()}
        d32 = {k: v.astype(np.float32).astype(np.float64) if v.dtype.kind == "f" else v
               for k, v in data.items()}
        self.ref = rg.reference(model.loss, f32, d32, digits=20)
        self.graph = self.ref.graph
        self.exact = self.ref.grad_as(np.float64)
        self.base = baseline(self.graph, self.ref.grad, self.ref.value, np.float32)
        self.vals = forward(self.graph, MP)

    def planted(self, grad_mp):
        """An mp gradient rounded to float32, with the tolerance for that candidate."""
        obj = {k: np.asarray(v, dtype=object) for k, v in grad_mp.items()}
        cand = {k: round_array(v, np.float32) for k, v in obj.items()}
        tol = {k: 4 * self.base.scale[k]
               + np.abs(cand[k].astype(np.float64) - round_array(obj[k], np.float64))
               for k in cand}
        return cand, tol

    def run(self, grad_mp, **kw):
        cand, tol = self.planted(grad_mp)
        return fingerprint(self.graph, self.exact, cand, tol, **kw)

    def mp_backward(self, graph=None, vals=None, local=None):
        with MP.context():
            return backward(graph or self.graph, MP, vals or self.vals, local=local)


@pytest.fixture(scope="module")
def lstm():
    return Setup(lstm_classifier(hidden=3, steps=5, inputs=3, classes=3))


@pytest.fixture(scope="module")
def net():
    return Setup(mlp(batch=4, sizes=(3, 4, 4, 2)))


def kinds(findings):
    return {f.tensor: f.kind for f in findings}


def only(findings, kind):
    assert findings, "no finding"
    assert {f.kind for f in findings} == {kind}, [str(f) for f in findings]
    assert all(f.confidence >= 0.6 for f in findings), [f.confidence for f in findings]
    return findings


def c_edges(g):
    """The f * c[t-1] multiplications: a mul whose second input is the previous c (an add)."""
    return sorted((n.id, 1) for n in g.nodes
                  if n.op == "mul" and g.nodes[n.inputs[1]].op == "add")


# -- correct and random candidates -----------------------------------------------------------
def test_correct_float32_candidate_has_no_findings(lstm, net):
    for s in (lstm, net):
        b = get_backend("float32")
        cand = backward(s.graph, b, forward(s.graph, b))
        tol = {k: 4 * s.base.scale[k] for k in cand}
        assert fingerprint(s.graph, s.exact, cand, tol) == []


def test_random_candidate_nothing_fits(lstm):
    rng = np.random.default_rng(3)
    cand = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in lstm.exact.items()}
    tol = {k: 4 * v for k, v in lstm.base.scale.items()}
    fs = fingerprint(lstm.graph, lstm.exact, cand, tol)
    assert [f.kind for f in fs] == ["nothing_fits"]
    assert "worst element" in fs[0].message and fs[0].evidence["weight_ih"]["wrong"] > 0


# -- direct fingerprints ------------------------------------------------------------------------
def test_scale_one_over_T_is_named(lstm):
    T = lstm.graph.nodes[lstm.graph.data["xs"]].shape[0]
    fs = only(lstm.run({k: v / T for k, v in lstm.ref.grad.items()}), "scale")
    assert len(fs) == len(lstm.exact)
    for f in fs:
        assert f.evidence["rational"] == f"1/{T}" and f.evidence["named"] == "1/T"
        assert f"1/{T} = 1/T" in f.message and "number of time steps" in f.message


def test_near_fit_has_lower_confidence(lstm):
    cand, tol = lstm.planted({k: v / 5 for k, v in lstm.ref.grad.items()})
    cand["weight_hh"][1, 2] = 7.0
    cand["weight_ih"][0, 0] = np.nan
    fs = {f.tensor: f for f in fingerprint(lstm.graph, lstm.exact, cand, tol)}
    assert {f.kind for f in fs.values()} == {"scale"}
    assert fs["weight_hh"].confidence < 1 and fs["weight_hh"].evidence["rational"] == "1/5"
    assert fs["weight_hh"].evidence["not_matched_first"] == [[1, 2]]
    assert "nearly (35 of 36" in fs["weight_ih"].message and fs["bias_ih"].confidence == 1


def test_scale_named_from_dims_and_sign(net):
    fs = only(net.run({k: v / 4 for k, v in net.ref.grad.items()}, dims={"batch": 4}), "scale")
    assert all(f.evidence["factor"] == 0.25 and "1/batch" in f.message for f in fs)
    only(net.run({k: -v for k, v in net.ref.grad.items()}), "sign")


def test_transpose_square_and_layout(lstm, net):
    g = dict(net.ref.grad, W2=net.ref.grad["W2"].T)
    assert kinds(net.run(g)) == {"W2": "transpose"}
    w = lstm.ref.grad["weight_ih"]  # (4H, D): W.T's gradient stored in W's buffer
    fs = lstm.run(dict(lstm.ref.grad, weight_ih=w.T.reshape(w.shape)))
    assert kinds(fs) == {"weight_ih": "transpose"}


def test_gate_block_permutation(lstm):
    w = lstm.ref.grad["weight_ih"]
    i, f, g, o = np.split(w, 4)
    fs = lstm.run(dict(lstm.ref.grad, weight_ih=np.concatenate([i, f, o, g])))
    assert kinds(fs) == {"weight_ih": "permutation"}
    assert fs[0].evidence["block_order"] == [0, 1, 3, 2] and "i,f,o,g" in fs[0].message


def test_gru_gate_blocks_swapped():
    from refgrad import nn

    def loss(p, d):
        hs, _ = nn.gru(d["xs"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        return rg.sum(rg.square(hs))

    rng = np.random.default_rng(2)
    H, D = 2, 2
    p = {"weight_ih": (3 * H, D), "weight_hh": (3 * H, H), "bias_ih": (3 * H,),
         "bias_hh": (3 * H,)}
    p = {k: rng.uniform(-1, 1, v).astype(np.float32).astype(np.float64) for k, v in p.items()}
    ref = rg.reference(loss, p, {"xs": rng.standard_normal((3, D)).astype(np.float32)
                                 .astype(np.float64)}, digits=20)
    r, z, n = np.split(ref.grad["weight_hh"], 3)
    planted = dict(ref.grad, weight_hh=np.concatenate([z, r, n]))
    cand = {k: round_array(v, np.float32) for k, v in planted.items()}
    scale = baseline(ref.graph, ref.grad, ref.value, np.float32).scale
    tol = {k: 4 * scale[k] + np.abs(cand[k] - round_array(planted[k], np.float64)) for k in cand}
    fs = fingerprint(ref.graph, ref.grad_as(np.float64), cand, tol)
    assert kinds(fs) == {"weight_hh": "permutation"} and "z,r,n" in fs[0].message


def test_row_permutation(net):
    w = net.ref.grad["W1"]
    fs = net.run(dict(net.ref.grad, W1=w[[0, 2, 1, 3]]))
    assert kinds(fs) == {"W1": "permutation"}
    assert fs[0].evidence["mapping"] == {"1": 2, "2": 1}


def test_zeros_and_missing(lstm):
    w = lstm.ref.grad["weight_hh"].copy()
    w[2] = 0
    fs = lstm.run(dict(lstm.ref.grad, weight_hh=w))
    assert kinds(fs) == {"weight_hh": "zero"} and fs[0].evidence["first_indices"][0] == [2, 0]
    cand, tol = lstm.planted(lstm.ref.grad)
    cand["b_out"] = np.zeros_like(cand["b_out"])
    del cand["W_out"]
    assert kinds(fingerprint(lstm.graph, lstm.exact, cand, tol)) == {"W_out": "zero",
                                                                     "b_out": "zero"}


# -- variant fingerprints ---------------------------------------------------------------------
def test_cut_recurrent_cell_path(lstm):
    edges = c_edges(lstm.graph)
    assert len(edges) == 4  # steps 1..T-1
    fs = only(lstm.run(lstm.mp_backward(lstm.graph.cut(edges))), "missing_path")
    assert {f.tensor for f in fs} == {"weight_ih", "weight_hh", "bias_ih", "bias_hh"}
    assert "carried over from the previous step" in fs[0].message
    assert sorted(map(tuple, fs[0].evidence["edges"])) == edges


def test_truncated_bptt(lstm):
    edges = c_edges(lstm.graph)
    fs = only(lstm.run(lstm.mp_backward(lstm.graph.cut(edges[:-1]))), "missing_path")
    assert all("truncated BPTT after 1 step" in f.message and f.evidence["truncated_after"] == 1
               for f in fs)


def test_tanh_derivative_on_output(lstm):
    local = {n.id: (lambda b, i, xs, y: 1 - b.tanh(y) ** 2)
             for n in lstm.graph.nodes if n.op == "tanh"}
    fs = only(lstm.run(lstm.mp_backward(local=local)), "wrong_local_derivative")
    assert all(f.evidence["primitive"] == "tanh" and "on the output" in f.message for f in fs)


def test_tanh_derivative_one_minus_a_squared_on_one_layer(net):
    t = [n for n in net.graph.nodes if n.op == "tanh"]
    local = {t[0].id: lambda b, i, xs, y: 1 - xs[0] ** 2}
    fs = only(net.run(net.mp_backward(local=local)), "wrong_local_derivative")
    assert {f.tensor for f in fs} == {"W1", "b1"}


def test_index_shift(lstm):
    g, vals = lstm.graph, list(lstm.vals)
    xs = lstm.vals[g.data["xs"]]
    for n in g.nodes:
        if n.op == "getitem" and n.inputs[0] == g.data["xs"]:
            t = n.attrs["index"][0] + 1
            vals[n.id] = xs[t] if t < xs.shape[0] else MP.zeros(n.shape)
    fs = only(lstm.run(lstm.mp_backward(vals=vals)), "index_shift")
    assert {f.tensor for f in fs} == {"weight_ih"} and fs[0].evidence["shift"] == 1


def rnn_loss(p, d):
    """A user-written Elman RNN: every op on its own line (so `where` tells lines apart)."""
    h, total = np.zeros(3), 0
    for t in range(d["xs"].shape[0]):
        a = p["W"] @ d["xs"][t] + p["U"] @ h + p["b"]
        h = rg.tanh(a)
        total = total + rg.sum(rg.square(h - d["ys"][t]))
    return total


def test_user_written_rnn_cut_and_truncated():
    rng = np.random.default_rng(5)
    f32 = lambda *s: rng.uniform(-0.6, 0.6, s).astype(np.float32).astype(np.float64)  # noqa: E731
    s = Setup.__new__(Setup)
    s.ref = rg.reference(rnn_loss, {"W": f32(3, 2), "U": f32(3, 3), "b": f32(3)},
                         {"xs": f32(6, 2), "ys": f32(6, 3)}, digits=20)
    s.graph, s.exact = s.ref.graph, s.ref.grad_as(np.float64)
    s.base = baseline(s.graph, s.ref.grad, s.ref.value, np.float32)
    s.vals = forward(s.graph, MP)
    assert len({n.where for n in s.graph.nodes}) > 3
    rec = sorted((n.id, 1) for n in s.graph.nodes
                 if n.op == "matmul" and s.graph.nodes[n.inputs[1]].op == "tanh")
    fs = only(s.run(s.mp_backward(s.graph.cut(rec))), "missing_path")
    assert {f.tensor for f in fs} == {"W", "U", "b"} and "previous step" in fs[0].message
    fs = only(s.run(s.mp_backward(s.graph.cut(rec[:-2]))), "missing_path")
    assert all(f.evidence["truncated_after"] == 2 for f in fs)
    fs = only(s.run({k: v / 6 for k, v in s.ref.grad.items()}, dims={"T": 6}), "scale")
    assert all("1/T" in f.message for f in fs)


def test_relu_derivative_in_cnn():
    s = Setup(cnn(size=6, channels=2, classes=3))
    local = {n.id: (lambda b, i, xs, y: b.const(1)) for n in s.graph.nodes if n.op == "relu"}
    fs = s.run(s.mp_backward(local=local))
    assert fs and {f.kind for f in fs} == {"wrong_local_derivative"}
    assert all(f.evidence["primitive"] == "relu" for f in fs)


def test_fast_on_the_user_story_lstm():
    """T=10, H=5, D=5: every family tried (a random candidate), on a fresh graph."""
    s = Setup(lstm_classifier())
    rng = np.random.default_rng(0)
    cand = {k: (v * (1 + 0.1 * rng.standard_normal(v.shape))).astype(np.float32)
            for k, v in s.exact.items()}
    tol = {k: 4 * v for k, v in s.base.scale.items()}
    t0 = time.perf_counter()
    fs = fingerprint(s.graph, s.exact, cand, tol)
    assert time.perf_counter() - t0 < 1.0
    assert [f.kind for f in fs] == ["nothing_fits"]
