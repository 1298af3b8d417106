"""Reverse mode: one backward sweep, applying each primitive's exact local rule.

Cost: each node's VJP is a constant number of array operations of the node's size, so the
gradient costs a small constant times one forward pass, whatever the number of parameters.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refgrad.evaluate.backends import Backend
from refgrad.evaluate.forward import as_array
from refgrad.graph.graph import Graph
from refgrad.primitives import REGISTRY, Elementwise


def backward(
    graph: Graph,
    b: Backend,
    vals: list[Any],
    *,
    all_nodes: bool = False,
    absolute: bool = False,
    local: Mapping[int, Callable[..., Any]] | None = None,
    perturb: Callable[[Any], Any] | None = None,
) -> Any:
    """Gradient of the output w.r.t. every param (dict name -> array), from forward values.

    all_nodes=True returns the cotangents of every node instead (None where no gradient flows).
    absolute=True runs the "absolute" reverse pass: every local partial, input and cotangent
    replaced by its absolute value, so Σ|paths| bounds how far round-off can move each entry.
    local={node id: f(b, i, xs, out) -> ∂out/∂x_i} replaces an elementwise node's local partials
    (how the diagnosis builds "the gradient with tanh' taken on the output" and similar mistakes).
    perturb(ct) is applied to every cotangent contribution (how round-off is simulated).
    """
    dep = graph.depends_on_params
    cut = graph.cut_edges
    grads: list[Any] = [None] * len(graph.nodes)
    with b.context():
        grads[graph.output] = as_array(b.const(1), b)
        for n in reversed(graph.nodes):
            g = grads[n.id]
            if g is None or n.is_leaf:
                continue
            needs = [dep[i] and (n.id, p) not in cut for p, i in enumerate(n.inputs)]
            if not any(needs):
                continue
            prim = REGISTRY[n.op]
            xs = [vals[i] for i in n.inputs]
            if local and n.id in local:
                cts = [g * local[n.id](b, p, xs, vals[n.id]) if need else None
                       for p, need in enumerate(needs)]
            elif isinstance(prim, Elementwise):
                cts = [_elementwise_ct(prim, p, b, g, xs, vals[n.id], absolute) if need else None
                       for p, need in enumerate(needs)]
            else:
                if absolute and prim.linear:
                    xs = [b.abs(x) for x in xs]
                cts = prim.vjp(b, g, xs, vals[n.id], n.attrs)
            for i, need, ct in zip(n.inputs, needs, cts):
                if need and ct is not None:
                    ct = as_array(ct, b) if perturb is None else perturb(as_array(ct, b))
                    grads[i] = ct if grads[i] is None else grads[i] + ct
        if all_nodes:
            return grads
        out = {}
        for name, i in graph.params.items():
            shape = graph.nodes[i].shape
            g = grads[i]
            out[name] = b.zeros(shape) if g is None else np.array(np.broadcast_to(g, shape), dtype=b.dtype)
        return out


def _elementwise_ct(
    prim: Elementwise, p: int, b: Backend, g: Any, xs: list[Any], out: Any, absolute: bool
) -> Any:
    d = prim.unit_partials[p]
    if d == 1 or (absolute and d == -1):
        return g
    if d == -1:
        return -g
    local = prim.partial(p, b, xs, out)
    return g * (b.abs(local) if absolute else local)
