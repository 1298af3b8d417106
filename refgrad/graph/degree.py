"""Polynomial degree of the loss in the params, proved from the graph's structure.

If every path from a param to the output goes through +, −, ×, integer powers, division by
param-free values and linear structural operations, the loss is a polynomial of degree d, so
every derivative of order > d is identically zero — at every point, not only this one. This is
how refgrad proves f''' ≡ 0 for an MSE loss (the third user story).
"""

from __future__ import annotations

import numpy as np

from refgrad.graph.graph import Graph

_LINEAR = {"broadcast_to", "reshape", "transpose", "getitem", "pad", "sum", "concatenate",
           "stack", "add", "sub", "neg", "stop_gradient"}


def polynomial_degree(graph: Graph) -> int | None:
    """Degree of the loss as a polynomial in the params, or None if it is not one."""
    deg: list[int | None] = [0] * len(graph.nodes)
    for n in graph.nodes:
        if n.op == "param":
            deg[n.id] = 1
            continue
        if n.is_leaf:
            continue
        ins = [deg[i] for i in n.inputs]
        if all(d == 0 for d in ins):
            deg[n.id] = 0
        elif any(d is None for d in ins):
            deg[n.id] = None
        elif n.op in _LINEAR:
            deg[n.id] = max(ins)  # type: ignore[type-var]
        elif n.op in ("mul", "matmul"):
            deg[n.id] = sum(ins)  # type: ignore[arg-type]
        elif n.op == "square":
            deg[n.id] = 2 * ins[0]  # type: ignore[operator]
        elif n.op == "div" and ins[1] == 0:
            deg[n.id] = ins[0]
        elif n.op == "pow" and ins[1] == 0:
            deg[n.id] = _integer_power(graph, n.inputs[1], ins[0])
        else:
            deg[n.id] = None
    return deg[graph.output]


def _integer_power(graph: Graph, exponent_id: int, base_degree: int | None) -> int | None:
    node = graph.nodes[exponent_id]
    if node.op != "const" or base_degree is None:
        return None
    e = np.asarray(graph.values[exponent_id], dtype=float)
    if e.size and np.all(e == e.flat[0]) and float(e.flat[0]).is_integer() and e.flat[0] >= 0:
        return base_degree * int(e.flat[0])
    return None


def vanishing_order(graph: Graph) -> int | None:
    """The least k with f^(k) ≡ 0 everywhere (degree + 1), or None if none is proved."""
    d = polynomial_degree(graph)
    return None if d is None else d + 1
