"""The forward pass: every live node of a graph evaluated on one backend."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refgrad.errors import DomainError, KinkError
from refgrad.evaluate.backends import Backend
from refgrad.graph.graph import Graph, Node
from refgrad.primitives import REGISTRY, Elementwise


def as_array(x: Any, b: Backend) -> np.ndarray:
    """Backends' scalar results (0-d reductions, constants) as arrays of the backend's dtype."""
    if isinstance(x, np.ndarray) and (x.dtype == b.dtype or not b.is_float):
        return x
    return np.asarray(x, dtype=b.dtype)


def forward(
    graph: Graph,
    b: Backend,
    params: Mapping[str, np.ndarray] | None = None,
    *,
    check_domain: bool | None = None,
    batched: bool = False,
    perturb: Callable[[Any], Any] | None = None,
) -> list[Any]:
    """Values of all live nodes (None for dead ones), at the traced point or at `params`.

    batched=True: each array in `params` carries one leading batch axis (B points at once, e.g.
    every finite-difference stencil point); the values of nodes that depend on them do too.
    Exact backends check each primitive's domain (log of 0, division by 0) and raise a
    DomainError naming the operation, where it was written, and the offending element.
    perturb(value) is applied to every computed node (how round-off is simulated).
    """
    check = (not b.is_float) if check_domain is None else check_domain
    leaves = graph.leaf_values(params)
    live = graph.live
    vals: list[Any] = [None] * len(graph.nodes)
    nbs = [0] * len(graph.nodes)
    with b.context():
        for n in graph.nodes:
            if not live[n.id]:
                continue
            if n.is_leaf:
                vals[n.id] = b.asarray(leaves[n.id])
                nbs[n.id] = int(batched and vals[n.id].ndim > len(n.shape))
                continue
            prim = REGISTRY[n.op]
            xs = [vals[i] for i in n.inputs]
            nb = max(nbs[i] for i in n.inputs)
            nbs[n.id] = nb
            try:
                if isinstance(prim, Elementwise):
                    if check:
                        _check_domain(prim, b, xs, n, graph)
                    out = prim.forward(b, *xs)
                else:
                    if nb and len(xs) > 1:
                        xs = [_batch(x, nb_i, x.shape if nb_i else (_size(xs, nbs, n),) + x.shape)
                              for x, nb_i in zip(xs, (nbs[i] for i in n.inputs))]
                    out = prim.forward(b, xs, n.attrs, nb)
            except ZeroDivisionError:
                raise DomainError(f"division by zero in {n.describe()}") from None
            vals[n.id] = as_array(out, b) if perturb is None else perturb(as_array(out, b))
    return vals


def _size(xs: list[Any], nbs: list[int], n: Node) -> int:
    """The batch size among a node's batched inputs."""
    return next(x.shape[0] for x, i in zip(xs, n.inputs) if nbs[i])


def _batch(x: Any, nb: int, shape: tuple[int, ...]) -> Any:
    """An unbatched input broadcast (as a view) to carry the batch axis."""
    return x if nb else np.broadcast_to(x, shape)


def _check_domain(prim: Elementwise, b: Backend, xs: list[Any], n: Node, graph: Graph) -> None:
    for fn, message in prim.domain_fns():
        try:
            ok = np.asarray(fn(b, *xs), dtype=bool)
        except KinkError:
            raise DomainError(
                f"{message}: in {n.describe()} an argument's enclosure touches the boundary"
            ) from None
        if not ok.all():
            bad = np.argwhere(~np.broadcast_to(ok, n.shape))
            idx = tuple(int(i) for i in bad[0])
            args = ", ".join(str(np.broadcast_to(x, n.shape)[idx]) for x in xs)
            src = ", ".join(graph.nodes[i].describe() for i in n.inputs)
            raise DomainError(
                f"{message}: {n.describe()} at element {idx} gets ({args}); "
                f"{len(bad)} element(s) fail; inputs: {src}"
            )
