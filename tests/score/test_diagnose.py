"""check(): bad candidates are named (never a crash), and the report's machine format."""

import json

import numpy as np
import pytest

import refgrad as rg

P = {"W": np.array([[0.5, -1.0], [2.0, 0.25]], np.float32), "b": np.array([0.1, -0.3], np.float32)}
D = {"x": np.array([1.0, -2.0], np.float32)}


def loss(p, d):
    return rg.sum(rg.tanh(p["W"] @ d["x"] + p["b"]) ** 2)


@pytest.fixture(scope="module")
def exact():
    return rg.reference(loss, P, D).grad_as(np.float32)


def test_candidate_keys_and_shapes_must_match(exact):
    with pytest.raises(rg.ShapeError, match="missing \\['b'\\]"):
        rg.check(loss, P, D, analytic={"W": exact["W"]})
    with pytest.raises(rg.ShapeError, match="unknown \\['c'\\]"):
        rg.check(loss, P, D, analytic=dict(exact, c=np.ones(2)))
    with pytest.raises(rg.ShapeError, match="numeric gradient 'W' has shape \\(3, 2\\)"):
        rg.check(loss, P, D, numeric=dict(exact, W=np.ones((3, 2))), eps=1e-2)


def test_flat_candidates_take_the_param_shape(exact):
    r = rg.check(loss, P, D, analytic={k: v.ravel() for k, v in exact.items()})
    assert r.analytic_verdict == "correct"


def test_nan_and_inf_in_a_candidate_are_named_and_counted(exact):
    bad = {k: v.copy() for k, v in exact.items()}
    bad["W"][0, 1] = np.nan
    bad["W"][1, 0] = np.inf
    r = rg.check(loss, P, D, analytic=bad)
    assert r.analytic_verdict == "bug"
    f = [f for f in r.findings if f.kind == "nonfinite"]
    assert f[0].tensor == "W" and f[0].evidence["count"] == 2 and f[0].evidence["first"] == [0, 1]
    assert "nonfinite" in r.to_json()


def test_dtype_that_does_not_match_the_data():
    p64 = {"W": np.array([[0.1, 0.2], [0.3, 0.4]]), "b": np.zeros(2)}
    with pytest.raises(rg.InputError, match="not float32 numbers"):
        rg.check(loss, p64, D, dtype=np.float32, eps=1e-2)


@pytest.mark.parametrize("eps", [0, -1e-3])
def test_eps_must_be_positive(exact, eps):
    with pytest.raises(rg.InputError, match="eps"):
        rg.check(loss, P, D, analytic=exact, eps=eps)


def test_report_to_dict_has_the_documented_shape(exact):
    num = rg.finite_difference(loss, P, D, dtype=np.float32, eps=1e-2)
    r = rg.check(loss, P, D, analytic={k: -v for k, v in exact.items()}, numeric=dict(num), eps=1e-2)
    doc = json.loads(r.to_json())
    assert doc["analytic"]["verdict"] == "bug"
    assert doc["numeric"]["verdict"] in {"ok", "roundoff", "truncation"}
    assert all({"kind", "tensor", "evidence"} <= set(f) for f in doc["findings"])
    assert any(f["kind"] == "sign" for f in doc["findings"])
    assert doc["summary"].startswith("analytic: BUG")
    assert {"discrepancy", "cs231n_max_relative_error"} <= set(doc["metrics"])
    assert str(r).splitlines()[0] == r.summary


def test_numeric_without_eps_infers_the_step(exact):
    num = rg.finite_difference(loss, P, D, dtype=np.float32, eps=1e-3)
    r = rg.check(loss, P, D, numeric=dict(num))
    assert r.numeric_verdict != "bug"
    assert any("eps was not given" in n for n in r.notes)


def test_numeric_false_skips_finite_differences(exact):
    r = rg.check(loss, P, D, analytic=exact, numeric=False)
    assert r.analytic_verdict == "correct" and r.numeric_verdict is None and r.fd_model is None
    assert r.ok and "numeric" not in r.summary
    with pytest.raises(ValueError, match="analytic"):
        rg.check(loss, P, D, numeric=False)
