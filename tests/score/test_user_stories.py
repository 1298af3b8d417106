"""The three user stories (../shared/seeds), end to end through check() and sweep()."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype


def _story(name, dtype=np.float32, seed=0):
    m = MODELS[name]
    p, d = m.example(seed)
    return m, in_dtype(p, dtype), in_dtype(d, dtype)


def _float_backprop(graph, dtype):
    b = get_backend(np.dtype(dtype).name)
    return backward(graph, b, forward(graph, b))


# --- 1. "GradientChecking, can I blame float precision?" (float32 C++ LSTM) ----------------
@pytest.fixture(scope="module")
def lstm():
    m, p, d = _story("lstm_classifier")
    g = rg.trace(m.loss, p, d)
    return m, p, d, g, _float_backprop(g, np.float32)


def test_lstm_backprop_averaged_by_T_is_a_bug_with_scale_1_over_T(lstm):
    m, p, d, g, good = lstm
    T = d["xs"].shape[0]
    averaged = {k: v / np.float32(T) for k, v in good.items()}
    r = rg.check(m.loss, p, d, analytic=averaged)
    assert r.analytic_verdict == "bug"
    scale = [f for f in r.findings if f.kind == "scale"]
    assert scale and all(f.evidence["factor"] == pytest.approx(1 / T) for f in scale)
    assert "1/T" in scale[0].message and "1/T" in r.summary
    assert r.to_dict()["analytic"]["verdict"] == "bug"


def test_lstm_fixed_backprop_is_correct_and_fd_at_5e_3_is_ok(lstm):
    m, p, d, g, good = lstm
    num = rg.finite_difference(m.loss, p, d, dtype=np.float32, eps=5e-3)
    r = rg.check(m.loss, p, d, analytic=good, numeric=dict(num), eps=5e-3)
    assert r.analytic_verdict == "correct" and r.numeric_verdict == "ok"
    obs, pred = r.metrics["numeric_vs_exact_discrepancy"], r.metrics["predicted_numeric_discrepancy"]
    assert 1 / 3 <= obs / pred <= 3
    assert not [f for f in r.findings if f.candidate == "analytic"]


def test_lstm_sweep_predicts_the_best_step(lstm):
    m, p, d, g, good = lstm
    s = rg.sweep(m.loss, p, d, dtype=np.float32)
    assert 1 / 4 <= s.best_predicted / s.best_observed <= 4
    keys = {"steps", "observed", "predicted", "best_observed", "best_predicted", "findings"}
    assert set(s.to_dict()) >= keys
    mid = (s.steps > 1e-5) & (s.steps < 0.2)  # where the Taylor model is meant to hold
    assert np.all(np.abs(np.log10(s.observed[mid] / s.predicted[mid])) < np.log10(3))


# --- 2. "How close is close enough?" (CNN, first layer matches only a few digits) ----------
@pytest.mark.parametrize("seed", [0, 6])
def test_cnn_correct_float32_backprop_is_never_a_bug_even_with_few_matching_digits(seed):
    m, p, d = _story("cnn", seed=seed)
    g = rg.trace(m.loss, p, d)
    a = _float_backprop(g, np.float32)
    num = rg.finite_difference(g, dtype=np.float32, eps=1e-3)
    r = rg.check(g, analytic=a, numeric=dict(num), eps=1e-3)
    assert r.analytic_verdict == "correct"
    assert r.numeric_verdict != "bug"
    with np.errstate(all="ignore"):
        digits = np.concatenate([(-np.log10(np.abs(a[k] - num[k]) / np.abs(a[k]))).ravel() for k in a])
    assert np.nanmin(digits) <= 3  # the user's "as low as 3 digits": tiny entries, not a bug
    assert r.metrics["cs231n_flagged"] > 0  # where cs231n's 1e-2 rule would have cried wolf


def test_cnn_relu_near_zero_is_a_kink_for_the_affected_elements_only():
    m, p, d = _story("cnn", np.float64)
    eps = 1e-4
    g = rg.trace(m.loss, in_dtype(p, np.float32), in_dtype(d, np.float32))
    before = rg.finite_difference(g, dtype=np.float32, eps=eps)
    assert all((v < 0).all() for v in before.kinks.values())  # no stencil crosses a kink yet
    vals = forward(rg.trace(m.loss, p, d), get_backend("float64"))
    relu1 = next(n for n in g.nodes if n.op == "relu")
    z = np.asarray(vals[relu1.inputs[0]])  # conv1 pre-activations, NCHW
    assert z.shape[:2] == (1, p["b1"].shape[0])
    z0 = z[0, 0].ravel()
    i = int(np.argmin(np.abs(z0)))
    p = dict(p, b1=p["b1"].copy())
    p["b1"][0] += 3e-5 - z0[i]  # one channel-0 pre-activation is now 3e-5: within eps of 0
    p, d = in_dtype(p, np.float32), in_dtype(d, np.float32)
    num = rg.finite_difference(m.loss, p, d, dtype=np.float32, eps=eps)
    r = rg.check(m.loss, p, d, numeric=dict(num), eps=eps)
    assert r.numeric_verdict == "kink"
    kinked = {k: t.numeric_class == "kink" for k, t in r.tensors.items()}
    assert kinked["b1"][0] and not kinked["b1"][1:].any()  # b1[0] moves it by eps: crosses
    assert not kinked["w1"][1:].any()  # other channels cannot move a channel-0 value
    assert not any(kinked[k].any() for k in ("w2", "b2", "W3", "b3"))  # nor later layers
    f = [f for f in r.findings if f.kind == "kink"]
    assert f and f[0].evidence["primitive"] == "relu" and f[0].tensor == "w1" or f[0].tensor == "b1"
    others = [t.numeric_class[t.numeric_class != "kink"] for t in r.tensors.values()]
    assert all((c != "bug").all() for c in others)


# --- 3. "MSE: why does a huge epsilon improve the discrepancy?" ----------------------------
def test_mse_fd_is_truncation_free_and_pure_roundoff():
    m, p, d = _story("mse")
    r = rg.check(m.loss, p, d, scheme="central", eps=1e-4)
    free = [f for f in r.findings if f.kind == "truncation_free"]
    assert free and "proved" in free[0].message and "larger step is better" in free[0].message
    assert r.numeric_verdict == "roundoff"
    model = r.fd_model
    pred = [model.discrepancy(h) for h in (1e-4, 1e-3, 1e-2, 1e-1, 1.0)]
    ratios = np.array(pred[:-1]) / np.array(pred[1:])
    assert np.all((ratios > 7) & (ratios < 13))  # ≈10x smaller per decade, as the forum table
    for h in (1e-4, 1e-2, 1.0):
        assert all(np.all(v == 0) for v in model.truncation(h).values())


def test_mse_fd_that_perturbs_down_and_back_is_an_fd_bug():
    m, p, d = _story("mse")
    g = rg.trace(m.loss, p, d)
    b = get_backend("float32")
    eps = np.float32(1e-2)
    x = p["X"].astype(np.float32)
    f0 = forward(g, b)[g.output]
    wrong = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xd = x.copy()
        xd[idx] -= eps  # "i -= EPSILON; down = f; i += EPSILON; up = f" at the original point
        down = forward(g, b, {"X": xd})[g.output]
        wrong[idx] = (f0 - down) / (2 * eps)
    r = rg.check(m.loss, p, d, numeric={"X": wrong}, eps=1e-2)
    assert r.numeric_verdict == "bug"
    scale = [f for f in r.findings if f.candidate == "numeric" and f.kind == "scale"]
    assert scale and scale[0].evidence["factor"] == pytest.approx(0.5)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("name", ["mse", "lstm_classifier", "cnn"])
def test_no_false_bug_verdicts_on_correct_implementations(name, dtype):
    m, p, d = _story(name, dtype)
    g = rg.trace(m.loss, p, d)
    for cand in (_float_backprop(g, dtype), rg.reference(g).grad_as(dtype)):
        r = rg.check(g, analytic=cand, dtype=dtype, fingerprints=False)
        assert r.analytic_verdict == "correct", r.summary
