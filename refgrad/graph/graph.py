"""Graph: frozen nodes in topological order (a node's inputs always come before it).

Leaves are `param` (differentiated), `data` (named constants) and `const` (literals). An edge
can be cut (`Graph.cut`): the reverse pass then sends no gradient along it, which is how the
engine computes "the gradient without the recurrent path".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from types import MappingProxyType
from typing import Any

import numpy as np

LEAVES = ("param", "data", "const")


@dataclass(frozen=True, eq=False)
class Node:
    id: int
    op: str
    inputs: tuple[int, ...]
    shape: tuple[int, ...]
    attrs: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    name: str | None = None
    where: str = ""

    @property
    def is_leaf(self) -> bool:
        return self.op in LEAVES

    def describe(self) -> str:
        """How a person recognises this node in an error message."""
        if self.op in ("param", "data"):
            return f"{self.op} {self.name!r} {self.shape}"
        if self.op == "const":
            return f"constant {self.shape}"
        at = f" at {self.where}" if self.where else ""
        return f"{self.op} -> {self.shape}{at}"


@dataclass(frozen=True, eq=False)
class Graph:
    """A traced loss: nodes, the output node, leaf ids by name, and the point (leaf values)."""

    nodes: tuple[Node, ...]
    output: int
    params: Mapping[str, int]
    data: Mapping[str, int]
    values: Mapping[int, Any]  # leaf id -> numpy array (params, data) or constant
    cut_edges: frozenset[tuple[int, int]] = frozenset()  # (node id, input position)

    def __len__(self) -> int:
        return len(self.nodes)

    def leaf_values(self, params: Mapping[str, np.ndarray] | None = None) -> dict[int, Any]:
        """Leaf values, with `params` (by name) replacing the traced point where given."""
        vals = dict(self.values)
        for k, v in (params or {}).items():
            vals[self.params[k]] = v
        return vals

    @cached_property
    def live(self) -> tuple[bool, ...]:
        """Which nodes the output depends on."""
        need = [False] * len(self.nodes)
        need[self.output] = True
        for n in reversed(self.nodes):
            if need[n.id]:
                for i in n.inputs:
                    need[i] = True
        return tuple(need)

    @cached_property
    def differentiable(self) -> tuple[bool, ...]:
        """Which nodes the output's gradient flows through (live, not behind a cut edge)."""
        flows = [False] * len(self.nodes)
        flows[self.output] = True
        for n in reversed(self.nodes):
            if flows[n.id]:
                for pos, i in enumerate(n.inputs):
                    if (n.id, pos) not in self.cut_edges:
                        flows[i] = True
        return tuple(flows)

    @cached_property
    def depends_on_params(self) -> tuple[bool, ...]:
        """Which nodes depend on some parameter (others need no cotangent)."""
        dep = [False] * len(self.nodes)
        for n in self.nodes:
            dep[n.id] = n.op == "param" or any(
                dep[i] for p, i in enumerate(n.inputs) if (n.id, p) not in self.cut_edges
            )
        return tuple(dep)

    def cut(self, edges: Iterable[tuple[int, int]]) -> Graph:
        """The same graph with these edges (node id, input position) cut for the gradient."""
        return replace(self, cut_edges=self.cut_edges | frozenset(edges))

    def find(self, op: str | None = None, where: str | None = None) -> list[Node]:
        """Nodes by primitive name and/or source location substring."""
        return [
            n
            for n in self.nodes
            if (op is None or n.op == op) and (where is None or where in n.where)
        ]
