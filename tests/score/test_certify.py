"""certify: hand-derived gradient formulas proved, checked numerically, or refuted."""

import json

import numpy as np
import pytest
import sympy as sp

import refgrad as rg
from refgrad.errors import InputError, ShapeError
from refgrad.models import MODELS
from refgrad.score.certify import _Formula, _prove, certify

MSE = MODELS["mse"]  # L = (1/r) Σ_rows (1/(2n)) Σ (x − t)², r = n = 8


@pytest.fixture(scope="module")
def mse_point():
    return MSE.example(0)


# --- the third user story -------------------------------------------------------------------------
def test_mse_story_formula_is_proved(mse_point):
    p, d = mse_point
    c = certify("(X[i,j] - T[i,j])/(8*8)", MSE.loss, p, d, wrt="X")
    assert c.verdict == "proved", c.message
    assert c.counterexample is None and c.points_checked == 8


def test_mse_story_with_one_over_n_is_refuted_with_a_counterexample(mse_point):
    p, d = mse_point
    c = certify("(X[i,j] - T[i,j])/8", MSE.loss, p, d, wrt="X")
    assert c.verdict == "refuted"
    cx = c.counterexample
    assert len(cx["elements"]) == 64 and cx["elements"][0] == (0, 0)
    assert set(cx["params"]) == {"X"} and set(cx["data"]) == {"T"}
    ratio = float(cx["formula"][0]) / float(cx["exact"][0])
    assert ratio == pytest.approx(8.0, rel=1e-12)  # off by the number of rows
    assert "refuted" in c.message and "(0, 0)" in c.message
    json.dumps(c.to_dict())  # the certificate serialises


def test_traced_formula_and_other_forms(mse_point):
    p, d = mse_point
    traced = certify(lambda p, d: (p["X"] - d["T"]) * (1 / 64), MSE.loss, p, d)
    assert traced.verdict == "proved"
    small = MODELS["mse"].configure(rows=2, features=3)
    ps, ds = small.example(1)
    X = [[sp.Symbol(f"X[{i},{j}]") for j in range(3)] for i in range(2)]
    T = [[sp.Symbol(f"T[{i},{j}]") for j in range(3)] for i in range(2)]
    matrix = sp.Matrix(2, 3, lambda i, j: (X[i][j] - T[i][j]) / 6)
    assert certify(matrix, small.loss, ps, ds).verdict == "proved"
    per_element = {(i, j): f"(X[{i},{j}] - T[{i},{j}])/6" for i in range(2) for j in range(3)}
    per_element[(1, 2)] = "(X[1,2] - T[1,2])/5"
    c = certify(per_element, small.loss, ps, ds)
    assert c.verdict == "refuted" and c.counterexample["elements"] == [(1, 2)]


# --- softmax cross-entropy: p − y -----------------------------------------------------------------
def _ce(p, d):
    return rg.losses.softmax_cross_entropy(p["Z"], d["y"], reduction="sum")


Z = np.random.default_rng(1).standard_normal((2, 3))
LABELS = np.array([2, 0])


@pytest.mark.parametrize("formula", [
    "exp(Z[i,j]) / Sum(exp(Z[i,k]), (k, 0, 2)) - KroneckerDelta(j, y[i])",
    lambda p, d: rg.softmax(p["Z"], axis=1) - np.eye(3)[d["y"]],
])
def test_softmax_cross_entropy_p_minus_y_is_proved(formula):
    c = certify(formula, _ce, {"Z": Z}, {"y": LABELS})
    assert c.verdict == "proved", c.message


def test_softmax_cross_entropy_with_half_y_is_refuted():
    c = certify(lambda p, d: rg.softmax(p["Z"], axis=1) - 0.5 * np.eye(3)[d["y"]], _ce,
                {"Z": Z}, {"y": LABELS})
    assert c.verdict == "refuted" and c.counterexample["elements"] == [(0, 2), (1, 0)]


def test_a_proof_needs_the_difference_to_vanish():
    """The symbolic step alone: a formula right only up to the normalisation is not proved."""
    g = rg.trace(_ce, {"Z": Z}, {"y": LABELS})
    for text, ok in [("exp(Z[i,j])/Sum(exp(Z[i,k]), (k, 0, 2)) - KroneckerDelta(j, y[i])", True),
                     ("exp(Z[i,j])/Sum(exp(Z[i,k]), (k, 0, 1)) - KroneckerDelta(j, y[i])", False)]:
        form = _Formula(text, g, {"y": LABELS}, "Z", None)
        assert _prove(form, {"Z": Z}, {"y": LABELS}, g, "Z", set(), 20.0)[0] is ok


# --- LSTM cell: tanh' taken on the output --------------------------------------------------------
H, D = 3, 2
_r = np.random.default_rng(3)
CELL_DATA = {"x": _r.standard_normal(D), "h": _r.standard_normal(H),
             "W_ih": 0.5 * _r.standard_normal((4 * H, D)), "W_hh": 0.5 * _r.standard_normal((4 * H, H)),
             "b": 0.5 * _r.standard_normal(4 * H), "w": _r.standard_normal(H)}
CELL_PARAMS = {"c": _r.standard_normal(H)}


def _cell_loss(p, d):
    h, _ = rg.nn.lstm_cell(d["x"], d["h"], p["c"], d["W_ih"], d["W_hh"], bias=d["b"])
    return rg.sum(d["w"] * h)


def _dL_dc(tanh_prime_on_output):
    """∂/∂c of Σ w·h', h' = o·tanh(c'), c' = f·c + i·g: w·o·tanh'(c')·f (PyTorch gate order)."""
    def formula(p, d):
        z = rg.nn.dense(d["x"], d["W_ih"]) + rg.nn.dense(d["h"], d["W_hh"]) + d["b"]
        i, f, g, o = (z[k * H:(k + 1) * H] for k in range(4))
        i, f, g, o = rg.sigmoid(i), rg.sigmoid(f), rg.tanh(g), rg.sigmoid(o)
        c_new = f * p["c"] + i * g
        h_new = o * rg.tanh(c_new)
        dtanh = 1 - h_new * h_new if tanh_prime_on_output else 1 - rg.tanh(c_new) ** 2
        return d["w"] * o * dtanh * f
    return formula


def test_lstm_cell_formula_is_proved():
    c = certify(_dL_dc(False), _cell_loss, CELL_PARAMS, CELL_DATA)
    assert c.verdict == "proved", c.message


def test_lstm_cell_tanh_prime_on_the_output_is_refuted():
    c = certify(_dL_dc(True), _cell_loss, CELL_PARAMS, CELL_DATA)
    assert c.verdict == "refuted"
    cx = c.counterexample
    assert cx["elements"] == [(0,), (1,), (2,)]
    assert all(f != e for f, e in zip(cx["formula"], cx["exact"], strict=True))


# --- when there is no proof ---------------------------------------------------------------------------
def test_kinks_and_budgets_leave_it_numerical():
    x = {"X": np.array([0.5, -1.25, 2.0])}
    c = certify(lambda p, d: p["X"] / rg.abs(p["X"]), lambda p, d: rg.sum(rg.abs(p["X"])), x)
    assert c.verdict == "holds_numerically" and c.points_checked == 8
    assert "kink" in c.proof and "8 points" in c.message
    slow = certify(_dL_dc(False), _cell_loss, CELL_PARAMS, CELL_DATA, points=2, prove_timeout=1e-3)
    assert slow.verdict == "holds_numerically" and "gave up" in slow.proof
    assert certify("2*X[i]", lambda p, d: rg.sum(p["X"] ** 2), x, prove=False).verdict == \
        "holds_numerically"


def test_points_are_redrawn_away_from_singularities():
    """log needs X > 0: random draws that leave the domain are drawn again, not reported."""
    x = {"X": np.array([0.5, 1.5, 3.0])}
    c = certify("1/X[i]", lambda p, d: rg.sum(rg.log(p["X"])), x, points=6)
    assert c.verdict == "proved" and c.points_checked == 6


def test_fixed_data_are_not_varied():
    """A formula that relies on one-hot targets holds for those targets, not for random ones."""
    y = {"Y": np.eye(3)[[2, 0]]}
    loss = lambda p, d: rg.losses.softmax_cross_entropy(p["Z"], d["Y"], reduction="sum")  # noqa: E731
    formula = lambda p, d: rg.softmax(p["Z"], axis=1) - d["Y"]  # noqa: E731
    assert certify(formula, loss, {"Z": Z}, y, vary_data=False).verdict == "proved"
    assert certify(formula, loss, {"Z": Z}, y).verdict == "refuted"


# --- bad input ------------------------------------------------------------------------------------
def test_bad_formulas_get_clear_errors(mse_point):
    p, d = mse_point
    with pytest.raises(InputError, match="does not parse"):
        certify("(X[i,j] - T[i,j]", MSE.loss, p, d)
    with pytest.raises(InputError, match="unknown symbol"):
        certify("X[i,j] - Q", MSE.loss, p, d)
    with pytest.raises(InputError, match=r"not an element"):
        certify("X[i,j+1]", MSE.loss, p, d)
    with pytest.raises(ShapeError, match="shape"):
        certify(lambda p, d: p["X"][0], MSE.loss, p, d)
    with pytest.raises(InputError, match="wrt"):
        certify("X[i,j]", MSE.loss, p, d, wrt="W")
    with pytest.raises(InputError, match="no entry"):
        certify({(0, 0): "X[0,0]"}, MSE.loss, p, d)
