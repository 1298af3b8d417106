"""What a correct implementation in a given dtype achieves, and how far round-off can move
each gradient entry.

- baseline: the same graph's forward and reverse pass run in the dtype, measured against the
  exact gradient;
- error scale: scale_i = max(u · depth · |∇|abs_i, 3 · spread_i). |∇|abs is the reverse pass
  with absolute values of every local partial and input, u the unit round-off and depth the
  weighted depth of the graph (a reduction over k terms counts 1 + log2 k): it bounds rounding
  in the backward pass. spread_i is the largest deviation over a few float64 runs with relative
  errors of size u injected at every forward value and cotangent (stochastic rounding): it
  catches forward errors amplified by nonlinear partials (exp in a softmax, say). Entries
  whose exact value is tiny by cancellation keep a scale set by the magnitudes that cancelled,
  so they are judged by what round-off can do to them, not by their relative error.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from refgrad.differentiate.reverse import backward
from refgrad.errors import InputError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.precision import round_array
from refgrad.graph.graph import Graph
from refgrad.primitives import REGISTRY, Elementwise


@dataclass
class Baseline:
    dtype: np.dtype
    value: Any  # the loss in the dtype
    grad: dict[str, np.ndarray]  # the reverse pass in the dtype
    error: dict[str, np.ndarray]  # |grad - exact| (float64)
    absgrad: dict[str, np.ndarray]  # the absolute reverse pass (float64)
    scale: dict[str, np.ndarray]  # u · depth · absgrad (float64)
    value_error: float
    depth: float
    u: float


def unit_roundoff(dtype: Any) -> float:
    return float(np.finfo(dtype).eps) / 2


def weighted_depth(graph: Graph) -> float:
    """Longest path from a param to the output, a k-term reduction counting 1 + log2 k."""
    depth = [0.0] * len(graph.nodes)
    for n in graph.nodes:
        if n.is_leaf:
            continue
        prim = REGISTRY[n.op]
        w = 1.0 if isinstance(prim, Elementwise) else 0.0
        if n.op == "sum":
            k = int(np.prod([graph.nodes[n.inputs[0]].shape[a] for a in n.attrs["axis"]]))
            w = 1 + math.log2(max(k, 1))
        elif n.op == "matmul":
            w = 2 + math.log2(max(graph.nodes[n.inputs[0]].shape[-1], 1))
        depth[n.id] = w + max(depth[i] for i in n.inputs)
    return max(depth[graph.output], 1.0)


def check_representable(graph: Graph, dtype: Any) -> None:
    """The point must be exactly what float code of this dtype sees; say which tensor is not."""
    for kind, names in (("param", graph.params), ("data", graph.data)):
        for name, i in names.items():
            v = np.asarray(graph.values[i])
            if v.dtype.kind == "f" and not np.array_equal(v.astype(dtype).astype(v.dtype), v):
                bad = np.argwhere(v.astype(dtype).astype(v.dtype) != v)[0]
                idx = tuple(int(j) for j in bad)
                raise InputError(
                    f"{kind} {name!r} holds values that are not {np.dtype(dtype).name} numbers "
                    f"(e.g. {v[idx]!r} at {idx}): pass the {np.dtype(dtype).name} values your "
                    "code uses (the reference is computed at exactly those), or the right dtype"
                )


def absolute_gradient(graph: Graph) -> dict[str, np.ndarray]:
    """The absolute reverse pass in float64 (magnitudes only are needed)."""
    b = get_backend("float64")
    return backward(graph, b, forward(graph, b), absolute=True)


def rounding_spread(graph: Graph, exact: dict[str, np.ndarray], u: float, runs: int = 6,
                    seed: int = 0) -> dict[str, np.ndarray]:
    """Max |g_run − g| over float64 runs with relative errors ≤ u injected everywhere."""
    rng = np.random.default_rng(seed)
    b = get_backend("float64")

    def perturb(x: np.ndarray) -> np.ndarray:
        return x * (1 + u * rng.uniform(-1, 1, np.shape(x)))

    spread = {k: np.zeros(v.shape) for k, v in exact.items()}
    for _ in range(runs):
        g = backward(graph, b, forward(graph, b, perturb=perturb), perturb=perturb)
        for k in spread:
            with np.errstate(all="ignore"):
                spread[k] = np.fmax(spread[k], np.abs(g[k] - exact[k]))
    return spread


def baseline(graph: Graph, exact: dict[str, np.ndarray], exact_value: Any, dtype: Any) -> Baseline:
    """Run the graph in `dtype`, compare to the exact gradient, and size the error scale."""
    dtype = np.dtype(dtype)
    check_representable(graph, dtype)
    b = get_backend(dtype.name)
    vals = forward(graph, b)
    grad = backward(graph, b, vals)
    ex = {k: round_array(v, np.float64) for k, v in exact.items()}
    with np.errstate(all="ignore"):
        err = {k: np.abs(grad[k].astype(np.float64) - ex[k]) for k in grad}
    absg = absolute_gradient(graph)
    u, depth = unit_roundoff(dtype), weighted_depth(graph)
    tiny = float(np.finfo(dtype).smallest_normal)
    spread = rounding_spread(graph, ex, u)
    scale = {k: np.maximum(u * depth * absg[k], 3 * spread[k]) + tiny * depth for k in absg}
    value = vals[graph.output][()]
    v_err = abs(float(value) - float(round_array(np.asarray(exact_value, dtype=object), np.float64)[()]))
    return Baseline(dtype, value, grad, err, absg, scale, v_err, depth, u)
