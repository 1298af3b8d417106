"""Where the point sits exactly on a kink of a non-smooth primitive the gradient flows through."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from refgrad.evaluate.backends import Backend
from refgrad.graph.graph import Graph
from refgrad.primitives import REGISTRY, Elementwise


@dataclass(frozen=True)
class Kink:
    """A non-smooth primitive evaluated exactly at its kink: the gradient there is a choice."""

    node: int
    op: str
    where: str
    count: int
    first: tuple[tuple[int, ...], ...]  # up to 5 element indices of the node's output
    subgradient: str

    def __str__(self) -> str:
        at = f" at {self.where}" if self.where else ""
        idx = ", ".join(map(str, self.first)) + (" ..." if self.count > len(self.first) else "")
        return f"{self.op}{at}: {self.count} element(s) exactly on the kink ({idx}); {self.subgradient}"


def _kinky(graph: Graph, vals: list[Any]) -> Iterator[tuple[Any, Any, list[Any]]]:
    """(node, primitive, input values) for every evaluated non-smooth node the gradient
    flows through."""
    flows = graph.differentiable
    for n in graph.nodes:
        if n.is_leaf or not flows[n.id] or vals[n.id] is None:
            continue
        prim = REGISTRY[n.op]
        if (prim.kink_fn() if isinstance(prim, Elementwise) else prim.kink) is not None:
            yield n, prim, [vals[i] for i in n.inputs]


def kink_masks(graph: Graph, b: Backend, vals: list[Any]) -> dict[int, np.ndarray]:
    """Node id -> boolean mask of output elements whose kink expression is exactly 0."""
    out: dict[int, np.ndarray] = {}
    with b.context():
        for n, prim, xs in _kinky(graph, vals):
            if isinstance(prim, Elementwise):
                fn = prim.kink_fn()
                mask = np.broadcast_to(np.asarray(b.compare("==", fn(b, *xs), b.const(0))), n.shape)
            else:
                mask = np.asarray(prim.kink(b, xs, vals[n.id], n.attrs))
            if mask.any():
                out[n.id] = mask
    return out


def find_kinks(graph: Graph, b: Backend, vals: list[Any]) -> list[Kink]:
    """The kinks the point sits on, one entry per node."""
    kinks = []
    for nid, mask in kink_masks(graph, b, vals).items():
        n = graph.nodes[nid]
        idx = tuple(tuple(int(i) for i in row) for row in np.argwhere(mask)[:5])
        kinks.append(Kink(nid, n.op, n.where, int(mask.sum()), idx, REGISTRY[n.op].subgradient))
    return kinks


def kink_sides(graph: Graph, b: Backend, vals: list[Any]) -> dict[int, np.ndarray]:
    """Node id -> which side of its kink each output element is on (sign of the kink
    expression; for a max, the index of the winner). Batched values work too."""
    out: dict[int, np.ndarray] = {}
    with b.context():
        for n, prim, xs in _kinky(graph, vals):
            if isinstance(prim, Elementwise):
                k = np.asarray(prim.kink_fn()(b, *xs))
                out[n.id] = np.sign(np.real(k)).astype(np.int8)
            elif n.op == "max":
                axis = n.attrs["axis"]
                x = xs[0]
                nb = x.ndim - len(graph.nodes[n.inputs[0]].shape)
                moved = np.moveaxis(x, [a + nb for a in axis], range(x.ndim - len(axis), x.ndim))
                flat = moved.reshape(moved.shape[: x.ndim - len(axis)] + (-1,))
                out[n.id] = np.argmax(flat, axis=-1)
    return out


def crossed(graph: Graph, at_point: dict[int, np.ndarray], batch: dict[int, np.ndarray]) -> tuple:
    """Per batch row: does any kink side differ from the point's (or sit on 0)? And the first
    node that does, for the message (−1 where none)."""
    n = next(iter(batch.values())).shape[0] if batch else 0
    hit = np.zeros(n, bool)
    first = np.full(n, -1)
    for nid, s0 in at_point.items():
        sb = batch[nid]
        diff = (sb != s0) | ((sb == 0) if sb.dtype == np.int8 else False)
        rows = diff.reshape(n, -1).any(axis=1)
        first = np.where(rows & (first < 0), nid, first)
        hit |= rows
    return hit, first
