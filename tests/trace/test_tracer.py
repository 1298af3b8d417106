"""Tracing: numpy values mix with traced ones, labels index, and untraceable code is refused."""

import numpy as np
import pytest

import refgrad as rg
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward


def _value(fn, params, data=None):
    g = rg.trace(fn, params, data)
    return float(forward(g, get_backend("float64"))[g.output])


def test_numpy_arrays_and_scalars_on_either_side():
    x = np.array([1.0, 2.0, 3.0])
    a = np.array([0.5, -1.0, 2.0])
    fn = lambda p, d: rg.sum(a * p["x"] + p["x"] * a + 2 - p["x"] / 4 + (a - p["x"]) ** 2 + 1 / p["x"])  # noqa: E731
    want = np.sum(a * x + x * a + 2 - x / 4 + (a - x) ** 2 + 1 / x)
    assert _value(fn, {"x": x}) == pytest.approx(want, rel=1e-15)


def test_matmul_with_numpy_on_the_left():
    W = np.arange(6.0).reshape(2, 3)
    x = np.array([1.0, -2.0, 0.5])
    assert _value(lambda p, d: rg.sum(W @ p["x"]), {"x": x}) == pytest.approx(np.sum(W @ x))


def test_integer_labels_reach_fn_as_numpy_and_index():
    seen = {}

    def fn(p, d):
        seen["type"] = type(d["y"])
        return -rg.sum(rg.log_softmax(p["z"], axis=1)[np.arange(2), d["y"]])

    z = np.array([[1.0, 2.0, 0.5], [0.1, -1.0, 3.0]])
    y = np.array([1, 2])
    got = _value(fn, {"z": z}, {"y": y})
    lse = np.log(np.exp(z).sum(1))
    assert seen["type"] is np.ndarray
    assert got == pytest.approx(-(z[0, 1] - lse[0]) - (z[1, 2] - lse[1]), rel=1e-14)


def test_iteration_over_the_first_axis():
    xs = np.arange(12.0).reshape(4, 3)
    fn = lambda p, d: rg.sum(rg.stack([t * i for i, t in enumerate(p["X"])]))  # noqa: E731
    assert _value(fn, {"X": xs}) == pytest.approx(sum(i * xs[i].sum() for i in range(4)))


def test_graph_records_where_each_node_was_written():
    g = rg.trace(lambda p, d: rg.sum(rg.tanh(p["x"])), {"x": np.ones(2)})
    tanh = g.find(op="tanh")[0]
    assert tanh.where.startswith("test_tracer.py:")


@pytest.mark.parametrize(
    "fn, match",
    [
        (lambda p, d: np.sum(p["x"]), "numpy.sum.*rg.sum"),
        (lambda p, d: rg.sum(np.tanh(p["x"])), "numpy.tanh.*rg.tanh"),
        (lambda p, d: rg.sum(p["x"]) if p["x"][0] else p["x"][1], "branch"),
        (lambda p, d: float(p["x"][0]) * p["x"][1], "float()"),
        (lambda p, d: np.asarray(p["x"]).sum(), "numpy array"),
        (lambda p, d: rg.sum(p["x"][p["x"]]), "indexing with a traced tensor"),
        (lambda p, d: rg.exp(np.ones(2)), "plain values only"),
    ],
)
def test_untraceable_operations_are_named(fn, match):
    with pytest.raises(rg.TraceError, match=match):
        rg.trace(fn, {"x": np.ones(2)})


def test_shape_errors_name_the_operands():
    msg = "add: shapes do not broadcast.*param 'a' \\(2,\\).*param 'b' \\(3,\\)"
    with pytest.raises(rg.ShapeError, match=msg):
        rg.trace(lambda p, d: rg.sum(p["a"] + p["b"]), {"a": np.ones(2), "b": np.ones(3)})
    with pytest.raises(rg.ShapeError, match="axis 2 is out of range"):
        rg.trace(lambda p, d: rg.sum(p["a"], axis=2), {"a": np.ones(2)})
    with pytest.raises(rg.ShapeError, match="cannot reshape"):
        rg.trace(lambda p, d: rg.sum(p["a"].reshape(3)), {"a": np.ones(2)})


def test_bad_data_is_named():
    with pytest.raises(rg.InputError, match="data 'x'.*non-finite"):
        rg.trace(lambda p, d: rg.sum(p["a"] * d["x"]), {"a": np.ones(2)}, {"x": np.array([1, np.inf])})
    with pytest.raises(rg.InputError, match="dtype"):
        rg.trace(lambda p, d: rg.sum(p["a"]), {"a": np.array(["x"])})
