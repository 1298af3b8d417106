"""A graph's edges grouped as 'the same line of code' across time steps, and which carry state.

The variant families cut, truncate or rewrite whole classes of edges at once (all time steps'
f * c[t-1], say), so a bug in one line of code is one variant; the analyses here find the
classes, tell recurrent ones apart and are cached per graph.
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

import numpy as np

from refgrad.graph.graph import Graph, Node


class EdgeClasses:
    """Edge classes of one graph, with the per-node keys, step births and consumers behind them."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self._sigs: dict[tuple[int, int], Any] = {}

    @cached_property
    def classes(self) -> list[list[tuple[int, int]]]:
        """Edges grouped by the consumer's key (source line, local structure, params) and input
        position: e.g. all time steps' f * c[t-1] multiplications, input 1."""
        g = self.graph
        dep, flows = analysis(g, "depends_on_params"), analysis(g, "differentiable")
        classes: dict[Any, list[tuple[int, int]]] = {}
        for n in g.nodes:
            if n.is_leaf or not flows[n.id]:
                continue
            for p, i in enumerate(n.inputs):
                if dep[i] and (n.id, p) not in g.cut_edges:
                    classes.setdefault((self.key(n.id), p), []).append((n.id, p))
        return list(classes.values())

    def key(self, i: int) -> Any:
        """What makes nodes 'the same line of code': source line, local structure (blind to the
        time step), and the params within 4 edges (layer 1's tanh is not layer 2's)."""
        near, frontier = set(), {i}
        for _ in range(4):
            frontier = {j for k in frontier for j in self.graph.nodes[k].inputs}
            near |= {self.graph.nodes[j].name for j in frontier
                     if self.graph.nodes[j].op == "param"}
        return self.graph.nodes[i].where, self.sig(i, 2), tuple(sorted(near))

    def sig(self, i: int, depth: int) -> Any:
        """A node's structure `depth` levels up, blind to which time step it belongs to."""
        key = (i, depth)
        if key not in self._sigs:
            n = self.graph.nodes[i]
            if n.is_leaf:
                s: Any = (n.op, n.name)
            elif depth == 0:
                s = (n.op, _attr_key(n))
            else:
                s = (n.op, _attr_key(n), tuple(self.sig(j, depth - 1) for j in n.inputs))
            self._sigs[key] = s
        return self._sigs[key]

    def upstream(self, edge: tuple[int, int]) -> tuple[int, int]:
        """The highest edge whose cut is the same as this one's (up a chain of single-use nodes
        with one differentiable input)."""
        g, dep = self.graph, analysis(self.graph, "depends_on_params")
        n, p = edge
        while True:
            u = g.nodes[n].inputs[p]
            ins = [q for q, i in enumerate(g.nodes[u].inputs)
                   if dep[i] and (u, q) not in g.cut_edges]
            if g.nodes[u].is_leaf or len(self.consumers[u]) != 1 or len(ins) != 1:
                return n, p
            n, p = u, ins[0]

    @cached_property
    def births(self) -> list[int]:
        """Per node, the latest step t of a per-step data input xs[t] it depends on (-1: none)."""
        g, out = self.graph, []
        for n in g.nodes:
            idx = n.attrs.get("index", ()) if n.op == "getitem" else ()
            if idx and isinstance(idx[0], (int, np.integer)) and g.nodes[n.inputs[0]].op == "data":
                out.append(int(idx[0]) % g.nodes[n.inputs[0]].shape[0])
            else:
                out.append(max((out[i] for i in n.inputs), default=-1))
        return out

    def carried(self, edge: tuple[int, int]) -> bool:
        """Does this edge carry a state from one time step into the next?

        Its input u depends on some step's data, and the edge either enters a node that has
        seen a later step, or u is also used elsewhere (a state: output and carried, like h[t])
        while the consumer only leads, within 2 single-use hops, into a later step.
        """
        n, p = edge
        u, b = self.graph.nodes[n].inputs[p], self.births
        if b[u] < 0 or b[u] < b[n]:
            return b[u] >= 0
        if len(self.consumers[u]) < 2:
            return False
        for _ in range(2):
            if len(self.consumers[n]) != 1:
                return False
            n = self.consumers[n][0]
            if b[n] > b[u]:
                return True
        return False

    def recurrent(self, edges: list[tuple[int, int]]) -> bool:
        """A class of edges carrying a state between steps (one per step)."""
        return len(edges) > 1 and all(self.carried(e) for e in edges[1:])

    @cached_property
    def consumers(self) -> list[list[int]]:
        """Per node, the ids of the nodes that take it as an input."""
        out: list[list[int]] = [[] for _ in self.graph.nodes]
        for n in self.graph.nodes:
            for i in n.inputs:
                out[i].append(n.id)
        return out


def analysis(graph: Graph, name: str) -> Any:
    """A graph analysis, whether the Graph exposes it as a method or a cached property."""
    v = getattr(graph, name)
    return v() if callable(v) else v


def _index_key(i: Any) -> Any:
    if isinstance(i, slice):
        return ("slice", i.start, i.stop, i.step)
    if isinstance(i, (int, np.integer)):
        return "int"  # which step: deliberately ignored
    if isinstance(i, np.ndarray):
        return ("array", i.shape)
    return repr(i)


def _attr_key(n: Node) -> tuple:
    out = []
    for k, v in sorted(n.attrs.items()):
        if k == "index":
            v = tuple(_index_key(i) for i in v)
        out.append((k, v if isinstance(v, (int, str, tuple, type(None))) else repr(v)))
    return tuple(out)
