"""Gradients of plausible buggy versions of a graph, in float64, for bug fingerprints.

Families: a class of edges cut (a path missing), a recurrent class kept only for the last k
steps (truncated BPTT), one elementwise primitive with a classic wrong derivative, and the
backward pass reading the neighbouring time step's input. Each family is computed on demand
and cached per graph, so one diagnosis (or several candidates for one graph) pays once.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import sympy as sp

from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph, Node
from refgrad.primitives.compile import compile_expr

FAMILIES = ("missing_path", "truncated", "wrong_local_derivative", "index_shift")
GATES = {4: ("ifgo", "LSTM gates (PyTorch order i,f,g,o)"),
         3: ("rzn", "GRU gates (PyTorch order r,z,n)")}

# what a recurrent input is, recognised by its op and its inputs' ops (gate blocks, op, inputs)
_STATE = {(4, "add", ("mul", "mul")): " (in an LSTM: the cell state c[t-1])",
          (4, "mul", ("sigmoid", "tanh")): " (in an LSTM: the hidden state h[t-1])",
          (3, "add", ("mul", "mul")): " (in a GRU: the hidden state h[t-1])"}
# classic mistakes: (primitive, wrong derivative in the input a and output y, what was done)
_a, _y = sp.symbols("a y", real=True)
MISTAKES: tuple[tuple[str, sp.Expr, str], ...] = (
    ("tanh", 1 - sp.tanh(_y) ** 2, "tanh' taken on the output: 1 − tanh(y)² instead of 1 − y²"),
    ("tanh", 1 - _a**2, "tanh' written 1 − a² on the pre-activation a (1 − y² is right)"),
    ("sigmoid", _y * (1 + _y), "sigmoid' written y(1 + y) instead of y(1 − y)"),
    ("sigmoid", _a * (1 - _a), "sigmoid' written a(1 − a) on the pre-activation a"),
    ("relu", sp.Integer(1), "relu' = 1 everywhere (negative inputs not masked)"),
    ("exp", _a, "exp' taken as the input a instead of exp(a)"),
    ("log", -1 / _a**2, "log' written −1/a² instead of 1/a"),
    ("softplus", 1 / (1 + sp.exp(-_y)), "softplus' taken as sigmoid(output) instead of "
     "sigmoid(input)"),
)


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
        self._fams: dict[str, list[Variant]] = {}
        self._sigs: dict[tuple[int, int], Any] = {}

    @cached_property
    def roundoff(self) -> dict[str, np.ndarray]:
        """float64 round-off scale of a variant (u · depth · absolute gradient)."""
        from refgrad.score.baseline import weighted_depth

        absg = backward(self.graph, self.b, self.vals, absolute=True)
        s = float(np.finfo(np.float64).eps) * weighted_depth(self.graph)
        return {k: s * np.abs(v) for k, v in absg.items()}

    def family(self, name: str) -> list[Variant]:
        if name not in self._fams:
            made = getattr(self, "_" + name)()
            self._fams[name] = self._dedup(made)
        return self._fams[name]

    # -- families ----------------------------------------------------------------------------
    def _missing_path(self) -> list[Variant]:
        """One variant per edge class; classes that are the same cut (a single-use chain such
        as sigmoid(z[0:5]) ← z[0:5]) share one backward pass."""
        out, done = [], {}
        for edges in self.edge_classes:
            what = ("your gradient equals the exact gradient without the path through "
                    + self.describe_edges(edges))
            same = frozenset(self._upstream(e) for e in edges)
            if same in done:
                done[same].equivalent.append(what)
                continue
            g = backward(self.graph.cut(edges), self.b, self.vals)
            v = done[same] = Variant("missing_path", what, self._edge_ev(edges), g)
            out.append(v)
        return out

    def _upstream(self, edge: tuple[int, int]) -> tuple[int, int]:
        """The highest edge whose cut is the same as this one's (up a chain of single-use nodes
        with one differentiable input)."""
        g, dep = self.graph, _prop(self.graph, "depends_on_params")
        n, p = edge
        while True:
            u = g.nodes[n].inputs[p]
            ins = [q for q, i in enumerate(g.nodes[u].inputs)
                   if dep[i] and (u, q) not in g.cut_edges]
            if g.nodes[u].is_leaf or len(self.consumers[u]) != 1 or len(ins) != 1:
                return n, p
            n, p = u, ins[0]

    def _truncated(self) -> list[Variant]:
        out = []
        for edges in self.edge_classes:
            if len(edges) < 3 or not self.recurrent(edges):
                continue
            for k in (1, 2):
                g = backward(self.graph.cut(edges[:-k]), self.b, self.vals)
                out.append(Variant(
                    "missing_path",
                    f"truncated BPTT after {k} step{'s' * (k > 1)}: your gradient follows a "
                    f"recurrent path back only {k} step{'s' * (k > 1)} from the last one (its "
                    f"{len(edges) - k} older edges cut); the path: {self.describe_edges(edges)}",
                    {**self._edge_ev(edges), "truncated_after": k}, g))
        return out

    def _wrong_local_derivative(self) -> list[Variant]:
        flows = _prop(self.graph, "differentiable")
        out = []
        for prim, expr, what in MISTAKES:
            nodes = [n for n in self.graph.nodes if n.op == prim and flows[n.id]]
            if not nodes:
                continue
            fn = compile_expr(expr, (_a, _y))
            groups: dict[Any, list[Node]] = {}
            for n in nodes:
                groups.setdefault(self.key(n.id), []).append(n)
            sets = [("all", nodes)] + ([("some", v) for v in groups.values()]
                                       if len(groups) > 1 else [])
            for scope, ns in sets:
                local = {n.id: (lambda b, i, xs, y, fn=fn: fn(b, xs[0], y)) for n in ns}
                g = backward(self.graph, self.b, self.vals, local=local)
                near = self.key(ns[0].id)[2]
                on = (f"all {len(ns)} {prim} node(s)" if scope == "all" else
                      f"the {len(ns)} node(s) {self.render(ns[0].id)}{_at(ns[0])}"
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

    # -- edge classes and their description --------------------------------------------------
    @cached_property
    def edge_classes(self) -> list[list[tuple[int, int]]]:
        """Edges grouped by the consumer's key (source line, local structure, params) and input
        position: e.g. all time steps' f * c[t-1] multiplications, input 1."""
        g = self.graph
        dep, flows = _prop(g, "depends_on_params"), _prop(g, "differentiable")
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
        out: list[list[int]] = [[] for _ in self.graph.nodes]
        for n in self.graph.nodes:
            for i in n.inputs:
                out[i].append(n.id)
        return out

    def describe_edges(self, edges: list[tuple[int, int]]) -> str:
        n, p = self.graph.nodes[edges[0][0]], edges[0][1]
        s = f"input {p} ({self.render(n.inputs[p], 1)}) of {self.render(n.id)}{_at(n)}"
        if len(edges) > 1:
            s += f", {len(edges)} edges"
            if self.recurrent(edges):
                s += ", one per step: the value carried over from the previous step"
                u = self.graph.nodes[n.inputs[p]]
                ins = tuple(sorted(self.graph.nodes[i].op for i in u.inputs))
                s += _STATE.get((self._blocks(), u.op, ins), "")
        notes = self.gate_notes(n.id)
        return s + (f" [{notes}]" if notes else "")

    def _blocks(self) -> int:
        """4 (3) if the graph slices gate vectors into 4 (3) equal blocks, else 0."""
        for n in self.graph.nodes:
            if n.op == "getitem":
                hit = _gate_block(n, self.graph.nodes[n.inputs[0]])
                if hit:
                    return hit[0]
        return 0

    def render(self, i: int, depth: int = 2) -> str:
        """A short expression for a node, e.g. mul(sigmoid(add[5:10]), add(mul, mul))."""
        n = self.graph.nodes[i]
        if n.op in ("param", "data"):
            return str(n.name)
        if n.op == "const":
            return "const"
        if n.op == "getitem":
            return f"{self.render(n.inputs[0], max(depth - 1, 0))}[{_index_str(n.attrs['index'])}]"
        if n.op == "transpose" and self.graph.nodes[n.inputs[0]].is_leaf:
            return f"{self.render(n.inputs[0], 0)}.T"
        if depth == 0:
            return n.op
        args = [self.render(j, depth - 1) for j in n.inputs[:3]]
        more = f", … {len(n.inputs)} inputs" if len(n.inputs) > 3 else ""
        return f"{n.op}({', '.join(args)}{more})"

    def gate_notes(self, i: int, depth: int = 3) -> str:
        """Name stacked-gate blocks met near a node (a slice of H out of 4H or 3H)."""
        found: dict[int, dict[str, str]] = {}
        stack = [(i, depth)]
        while stack:
            j, d = stack.pop()
            n = self.graph.nodes[j]
            if n.op == "getitem":
                hit = _gate_block(n, self.graph.nodes[n.inputs[0]])
                if hit:
                    found.setdefault(hit[0], {})[hit[1]] = GATES[hit[0]][0][hit[2]]
            if d:
                stack.extend((k, d - 1) for k in n.inputs)
        return "; ".join(f"if these are {GATES[k][1]}: " + ", ".join(
            f"[{s}] = {v}" for s, v in sorted(f.items(), key=lambda kv: int(kv[0].split(":")[0])))
            for k, f in found.items())

    def _edge_ev(self, edges: list[tuple[int, int]]) -> dict[str, Any]:
        n = self.graph.nodes[edges[0][0]]
        return {"edges": [list(e) for e in edges[:12]], "n_edges": len(edges), "op": n.op,
                "where": n.where, "input": edges[0][1], "recurrent": self.recurrent(edges)}


_CACHE: weakref.WeakKeyDictionary[Graph, Variants] = weakref.WeakKeyDictionary()


def variants_for(graph: Graph) -> Variants:
    """The (cached) variants of a graph."""
    v = _CACHE.get(graph)
    if v is None:
        v = _CACHE[graph] = Variants(graph)
    return v


def _prop(graph: Graph, name: str) -> Any:
    """A graph analysis, whether the Graph exposes it as a method or a cached property."""
    v = getattr(graph, name)
    return v() if callable(v) else v


def _at(n: Node) -> str:
    return f" at {n.where}" if n.where else ""


def _index_str(index: tuple) -> str:
    def one(i: Any) -> str:
        if isinstance(i, slice):
            return f"{'' if i.start is None else i.start}:{'' if i.stop is None else i.stop}" + (
                f":{i.step}" if i.step not in (None, 1) else "")
        if isinstance(i, np.ndarray):
            return "[...]"
        return "..." if i is Ellipsis else "t" if isinstance(i, (int, np.integer)) else repr(i)
    return ", ".join(one(i) for i in index)


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


def _gate_block(n: Node, src: Node) -> tuple[int, str, int] | None:
    """(blocks, 'a:b', k) when a getitem takes block k of 4 (or 3) equal slices of its input."""
    idx = n.attrs["index"]
    sl = idx[-1] if idx and isinstance(idx[-1], slice) else None
    if sl is None or any(not (isinstance(i, slice) or i is Ellipsis) for i in idx):
        return None
    size = src.shape[len(idx) - 1] if Ellipsis not in idx else src.shape[-1]
    start, stop, step = sl.indices(size)
    width = stop - start
    for blocks in GATES:
        if step == 1 and width and width * blocks == size and start % width == 0:
            return blocks, f"{start}:{stop}", start // width
    return None
