"""How findings put a graph into words: nodes as short expressions, a class of edges (a missing
path) with its gate blocks and recurrent state, and the dimensions a scale factor may come from.
"""

from __future__ import annotations

import itertools
from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.graph.graph import Graph, Node
from refgrad.score.edge_classes import EdgeClasses

GATES = {4: ("ifgo", "LSTM gates (PyTorch order i,f,g,o)"),
         3: ("rzn", "GRU gates (PyTorch order r,z,n)")}

# what a recurrent input is, recognised by its op and its inputs' ops (gate blocks, op, inputs)
_STATE = {(4, "add", ("mul", "mul")): " (in an LSTM: the cell state c[t-1])",
          (4, "mul", ("sigmoid", "tanh")): " (in an LSTM: the hidden state h[t-1])",
          (3, "add", ("mul", "mul")): " (in a GRU: the hidden state h[t-1])"}


# -- edges and nodes ------------------------------------------------------------------------
def describe_edges(ec: EdgeClasses, edges: list[tuple[int, int]]) -> str:
    """A class of edges (a path) in words: which input of which node, where, how many edges, and
    the state they carry from step to step when they are recurrent."""
    graph = ec.graph
    n, p = graph.nodes[edges[0][0]], edges[0][1]
    s = f"input {p} ({render(graph, n.inputs[p], 1)}) of {render(graph, n.id)}{at(n)}"
    if len(edges) > 1:
        s += f", {len(edges)} edges"
        if ec.recurrent(edges):
            s += ", one per step: the value carried over from the previous step"
            u = graph.nodes[n.inputs[p]]
            ins = tuple(sorted(graph.nodes[i].op for i in u.inputs))
            s += _STATE.get((_gate_blocks(graph), u.op, ins), "")
    notes = gate_notes(graph, n.id)
    return s + (f" [{notes}]" if notes else "")


def edge_evidence(ec: EdgeClasses, edges: list[tuple[int, int]]) -> dict[str, Any]:
    """The JSON evidence naming a class of edges: the first 12, their op, line and input."""
    n = ec.graph.nodes[edges[0][0]]
    return {"edges": [list(e) for e in edges[:12]], "n_edges": len(edges), "op": n.op,
            "where": n.where, "input": edges[0][1], "recurrent": ec.recurrent(edges)}


def render(graph: Graph, i: int, depth: int = 2) -> str:
    """A short expression for a node, e.g. mul(sigmoid(add[5:10]), add(mul, mul))."""
    n = graph.nodes[i]
    if n.op in ("param", "data"):
        return str(n.name)
    if n.op == "const":
        return "const"
    if n.op == "getitem":
        return f"{render(graph, n.inputs[0], max(depth - 1, 0))}[{_index_str(n.attrs['index'])}]"
    if n.op == "transpose" and graph.nodes[n.inputs[0]].is_leaf:
        return f"{render(graph, n.inputs[0], 0)}.T"
    if depth == 0:
        return n.op
    args = [render(graph, j, depth - 1) for j in n.inputs[:3]]
    more = f", … {len(n.inputs)} inputs" if len(n.inputs) > 3 else ""
    return f"{n.op}({', '.join(args)}{more})"


def at(n: Node) -> str:
    """' at file.py:12' for a node that knows its source line, else ''."""
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


# -- stacked gate blocks --------------------------------------------------------------------
def gate_notes(graph: Graph, i: int, depth: int = 3) -> str:
    """Name stacked-gate blocks met near a node (a slice of H out of 4H or 3H)."""
    found: dict[int, dict[str, str]] = {}
    stack = [(i, depth)]
    while stack:
        j, d = stack.pop()
        n = graph.nodes[j]
        if n.op == "getitem":
            hit = _gate_block(n, graph.nodes[n.inputs[0]])
            if hit:
                found.setdefault(hit[0], {})[hit[1]] = GATES[hit[0]][0][hit[2]]
        if d:
            stack.extend((k, d - 1) for k in n.inputs)
    return "; ".join(f"if these are {GATES[k][1]}: " + ", ".join(
        f"[{s}] = {v}" for s, v in sorted(f.items(), key=lambda kv: int(kv[0].split(":")[0])))
        for k, f in found.items())


def _gate_blocks(graph: Graph) -> int:
    """4 (3) if the graph slices gate vectors into 4 (3) equal blocks, else 0."""
    for n in graph.nodes:
        if n.op == "getitem":
            hit = _gate_block(n, graph.nodes[n.inputs[0]])
            if hit:
                return hit[0]
    return 0


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


# -- dimensions -----------------------------------------------------------------------------
def dimensions(graph: Graph, dims: dict[str, int]) -> list[tuple[int, str, str]]:
    """(size, short name, explanation) of every axis a factor might come from, best first."""
    out = [(int(v), k, f"dims[{k!r}]") for k, v in dims.items()]
    steps = {n.inputs[0] for n in graph.nodes
             if n.op == "getitem" and graph.nodes[n.inputs[0]].op == "data"
             and n.attrs["index"] and isinstance(n.attrs["index"][0], (int, np.integer))}
    for kind, leaves in (("data", graph.data), ("param", graph.params)):
        for name, i in sorted(leaves.items(), key=lambda kv: (kv[1] not in steps, kv[1])):
            for ax, size in enumerate(graph.nodes[i].shape):
                if i in steps and ax == 0:
                    out.append((size, "T", f"axis 0 of data {name!r}, the number of time steps"))
                else:
                    out.append((size, f"{name}.shape[{ax}]", f"axis {ax} of {kind} {name!r}"))
    return [d for d in out if d[0] > 1]


def name_factor(r: Fraction | float, graph: Graph, dims: dict[str, int]) -> tuple[str, dict]:
    """': scale 1/10 = 1/T (axis 0 of data 'xs', the number of time steps)' and its evidence."""
    if not isinstance(r, Fraction):
        return "", {}
    ds = dimensions(graph, dims)

    def name(k: int) -> tuple[str, list[str]]:
        hits = [d for d in ds if d[0] == k]
        if k == 1 or hits:
            return (hits[0][1], [h[2] for h in hits[:3]]) if hits else ("1", [])
        for a, b in itertools.combinations(ds, 2):
            if a[0] * b[0] == k and a[1] != b[1]:
                return f"{a[1]}·{b[1]}", [a[2], b[2]]
        return str(k), []

    (top, w1), (bot, w2) = name(abs(r.numerator)), name(r.denominator)
    why = list(dict.fromkeys(w1 + w2))
    if not why:
        return f": scale {r}", {"rational": str(r)}
    named = ("−" if r < 0 else "") + top + (f"/{bot}" if r.denominator > 1 else "")
    return (f": scale {r} = {named} ({'; '.join(why)})",
            {"rational": str(r), "named": named, "dimensions": why})
