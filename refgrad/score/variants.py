"""Gradients of plausible buggy versions of a graph, in float64, for bug fingerprints.

Families: a class of edges cut (a path missing), a recurrent class kept only for the last k
steps (truncated BPTT), one elementwise primitive with a classic wrong derivative, and the
backward pass reading the neighbouring time step's input. Each family is computed on demand
and cached per graph, so one diagnosis (or several candidates for one graph) pays once.
The classes of edges cut are found in edge_classes.py, put into words in naming.py; the wrong
derivatives are the table in mistakes.py.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph, Node
from refgrad.primitives.compile import compile_expr
from refgrad.score.edge_classes import EdgeClasses, analysis
from refgrad.score.mistakes import MISTAKES, A, Y
from refgrad.score.naming import at, describe_edges, edge_evidence, render

FAMILIES = ("missing_path", "truncated", "wrong_local_derivative", "index_shift")


@dataclass
class Variant:
    """One buggy version: its gradient (float64, by param name) and how to say what it is."""

    kind: str
    message: str
    evidence: dict[str, Any]
    grad: dict[str, np.ndarray]
    equivalent: list[str] = field(default_factory=list)  # other bugs giving the same gradient


class Variants:
    """Float64 forward values of one graph and its variant families, computed lazily."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.b = get_backend("float64")
        self.vals = forward(graph, self.b)
        self.base = backward(graph, self.b, self.vals)
        self.edges = EdgeClasses(graph)
        self._fams: dict[str, list[Variant]] = {}

    @cached_property
    def roundoff(self) -> dict[str, np.ndarray]:
        """float64 round-off scale of a variant (u · depth · absolute gradient)."""
        from refgrad.score.baseline import weighted_depth

        absg = backward(self.graph, self.b, self.vals, absolute=True)
        s = float(np.finfo(np.float64).eps) * weighted_depth(self.graph)
        return {k: s * np.abs(v) for k, v in absg.items()}

    def family(self, name: str) -> list[Variant]:
        """The variants of one family (a name in FAMILIES), built on first use, deduplicated."""
        if name not in self._fams:
            made = getattr(self, "_" + name)()
            self._fams[name] = self._dedup(made)
        return self._fams[name]

    # -- families ----------------------------------------------------------------------------
    def _missing_path(self) -> list[Variant]:
        """One variant per edge class; classes that are the same cut (a single-use chain such
        as sigmoid(z[0:5]) ← z[0:5]) share one backward pass."""
        out, done = [], {}
        for edges in self.edges.classes:
            what = ("your gradient equals the exact gradient without the path through "
                    + describe_edges(self.edges, edges))
            same = frozenset(self.edges.upstream(e) for e in edges)
            if same in done:
                done[same].equivalent.append(what)
                continue
            g = backward(self.graph.cut(edges), self.b, self.vals)
            v = done[same] = Variant("missing_path", what, edge_evidence(self.edges, edges), g)
            out.append(v)
        return out

    def _truncated(self) -> list[Variant]:
        out = []
        for edges in self.edges.classes:
            if len(edges) < 3 or not self.edges.recurrent(edges):
                continue
            for k in (1, 2):
                g = backward(self.graph.cut(edges[:-k]), self.b, self.vals)
                out.append(Variant(
                    "missing_path",
                    f"truncated BPTT after {k} step{'s' * (k > 1)}: your gradient follows a "
                    f"recurrent path back only {k} step{'s' * (k > 1)} from the last one (its "
                    f"{len(edges) - k} older edges cut); the path: {describe_edges(self.edges, edges)}",
                    {**edge_evidence(self.edges, edges), "truncated_after": k}, g))
        return out

    def _wrong_local_derivative(self) -> list[Variant]:
        flows = analysis(self.graph, "differentiable")
        out = []
        for prim, expr, what in MISTAKES:
            nodes = [n for n in self.graph.nodes if n.op == prim and flows[n.id]]
            if not nodes:
                continue
            fn = compile_expr(expr, (A, Y))
            groups: dict[Any, list[Node]] = {}
            for n in nodes:
                groups.setdefault(self.edges.key(n.id), []).append(n)
            sets = [("all", nodes)] + ([("some", v) for v in groups.values()]
                                       if len(groups) > 1 else [])
            for scope, ns in sets:
                local = {n.id: (lambda b, i, xs, y, fn=fn: fn(b, xs[0], y)) for n in ns}
                g = backward(self.graph, self.b, self.vals, local=local)
                near = self.edges.key(ns[0].id)[2]
                on = (f"all {len(ns)} {prim} node(s)" if scope == "all" else
                      f"the {len(ns)} node(s) {render(self.graph, ns[0].id)}{at(ns[0])}"
                      + (f" (next to params {', '.join(near)})" if near else ""))
                out.append(Variant("wrong_local_derivative", f"{what}, for {on}",
                                   {"primitive": prim, "mistake": str(expr), "nodes": len(ns),
                                    "first_node": ns[0].id}, g))
        return out

    def _index_shift(self) -> list[Variant]:
        by_leaf: dict[int, list[Node]] = {}
        for n in self.graph.nodes:
            if n.op == "getitem" and self.graph.nodes[n.inputs[0]].op == "data":
                idx = n.attrs["index"]
                if idx and isinstance(idx[0], (int, np.integer)):
                    by_leaf.setdefault(n.inputs[0], []).append(n)
        out = []
        for leaf, ns in by_leaf.items():
            x, name = self.vals[leaf], self.graph.nodes[leaf].name
            for s in (1, -1):
                vals = list(self.vals)
                for n in ns:
                    t = int(n.attrs["index"][0]) % x.shape[0] + s
                    src = x[(t,) + tuple(n.attrs["index"][1:])] if 0 <= t < x.shape[0] else None
                    vals[n.id] = np.zeros(n.shape) if src is None else np.asarray(src, np.float64)
                g = backward(self.graph, self.b, vals)
                nb = "next" if s > 0 else "previous"
                out.append(Variant(
                    "index_shift",
                    f"the backward pass reads {name}[t{s:+d}] (the {nb} step's input) where the "
                    f"forward pass used {name}[t], zeros past the end, for the {len(ns)} "
                    f"steps of data {name!r}", {"data": name, "shift": s, "steps": len(ns)}, g))
        return out

    def _dedup(self, made: list[Variant]) -> list[Variant]:
        """Drop variants equal to the exact gradient; merge ones equal to an earlier one."""
        names = list(self.base)
        flat = [np.concatenate([self.base[k].ravel() for k in names])]
        floor = np.concatenate([np.full(self.base[k].size, 1e-12 * np.abs(self.base[k]).max(
            initial=0) + 1e-300) for k in names])
        owner: list[Variant | None] = [None]
        for v in made:
            x = np.concatenate([v.grad[k].ravel() for k in names])
            same = (np.abs(np.stack(flat) - x) <= 1e-10 * np.abs(x) + floor).all(axis=1)
            if same.any():
                twin = owner[int(np.argmax(same))]
                if twin is not None:
                    twin.equivalent.append(v.message)
                continue
            flat.append(x)
            owner.append(v)
        return [v for v in owner if v is not None]


_CACHE: weakref.WeakKeyDictionary[Graph, Variants] = weakref.WeakKeyDictionary()


def variants_for(graph: Graph) -> Variants:
    """The (cached) variants of a graph."""
    v = _CACHE.get(graph)
    if v is None:
        v = _CACHE[graph] = Variants(graph)
    return v
