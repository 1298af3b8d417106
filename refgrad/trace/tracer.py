"""Record `fn(params, data)` as a Graph by running it once on tracer tensors."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import numpy as np

from refgrad.errors import InputError, ShapeError, TraceError
from refgrad.graph.graph import Graph, Node
from refgrad.trace.tensor import Tensor

_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _where() -> str:
    """file:line of the innermost frame outside refgrad (what the user wrote)."""
    f = sys._getframe(2)
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
    if f is None:
        return ""
    return f"{os.path.basename(f.f_code.co_filename)}:{f.f_lineno}"


class Tracer:
    """Collects nodes while `fn` runs; nodes are appended in creation (= topological) order."""

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.values: dict[int, Any] = {}
        self.params: dict[str, int] = {}
        self.data: dict[str, int] = {}
        self.cut: set[tuple[int, int]] = set()

    def _add(self, op: str, inputs: tuple[int, ...], shape: tuple[int, ...], attrs: dict,
             name: str | None = None) -> Tensor:
        node = Node(len(self.nodes), op, inputs, tuple(int(s) for s in shape),
                    MappingProxyType(attrs), name, _where())
        self.nodes.append(node)
        return Tensor(node, self)

    def leaf(self, kind: str, name: str, value: np.ndarray) -> Tensor:
        t = self._add(kind, (), value.shape, {}, name)
        self.values[t.node.id] = value
        (self.params if kind == "param" else self.data)[name] = t.node.id
        return t

    def const(self, value: Any) -> Tensor:
        plain = isinstance(value, (np.ndarray, np.generic, int, float))
        arr = np.asarray(value) if plain else np.asarray(value, dtype=object)
        t = self._add("const", (), arr.shape, {})
        self.values[t.node.id] = arr
        return t

    def apply(self, op: str, inputs: list[Tensor], out_shape: tuple[int, ...], **attrs: Any) -> Tensor:
        return self._add(op, tuple(t.node.id for t in inputs), out_shape, attrs)


class _Named(dict):
    """params/data as `fn` sees them: a missing key is a clear error, not a bare KeyError."""

    def __init__(self, kind: str, items: dict):
        super().__init__(items)
        self.kind = kind

    def __missing__(self, key: Any) -> Any:
        raise InputError(
            f"fn reads {self.kind}[{key!r}], but {self.kind} has no such key "
            f"(it has: {', '.join(map(repr, self)) or 'nothing'})"
        )


def check_array(kind: str, name: str, value: Any) -> np.ndarray:
    """A finite float array for a param or float datum; a clear error otherwise."""
    arr = np.asarray(value)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise InputError(f"{kind} {name!r} has dtype {arr.dtype}; refgrad needs real float arrays")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(
            f"{kind} {name!r} has {int(bad.sum())} non-finite value(s), first {arr[idx]} at index {idx}"
        )
    return arr


def trace(fn: Callable[..., Any], params: Mapping[str, Any], data: Mapping[str, Any] | None = None,
          *, scalar: bool = True) -> Graph:
    """Run `fn(params, data)` once on tracers; return the graph of the scalar loss, or with
    scalar=False of any array (a gradient formula: it may even be constant)."""
    if not isinstance(params, Mapping) or not params:
        raise InputError("params must be a non-empty dict of name -> float array")
    tr = Tracer()
    p = {str(k): tr.leaf("param", str(k), check_array("param", str(k), v)) for k, v in params.items()}
    d: dict[str, Any] = {}
    for k, v in (data or {}).items():
        arr = np.asarray(v)
        if arr.dtype.kind in "iub":  # labels and masks reach fn as plain numpy arrays
            d[str(k)] = arr
        else:
            d[str(k)] = tr.leaf("data", str(k), check_array("data", str(k), arr))
    out = fn(_Named("params", p), _Named("data", d))
    out = _loss(out, tr) if scalar else _array(out, tr)
    graph = Graph(tuple(tr.nodes), out.node.id, MappingProxyType(tr.params),
                  MappingProxyType(tr.data), MappingProxyType(tr.values), frozenset(tr.cut))
    if scalar and not graph.depends_on_params[graph.output]:
        raise TraceError("the loss does not depend on any parameter")
    return graph


def _loss(out: Any, tr: Tracer) -> Tensor:
    """`fn`'s output as the scalar loss of this trace; a clear error if it is anything else."""
    if not isinstance(out, Tensor):
        raise TraceError(
            f"fn returned {type(out).__name__}, not a traced value: the loss must be computed "
            "from params with refgrad operations"
        )
    if out.tracer is not tr:
        raise TraceError("fn returned a tensor from another trace")
    if out.shape != ():
        if out.size != 1:
            raise ShapeError(f"the loss must be a scalar; fn returned shape {out.shape} "
                             "(reduce it with rg.sum or rg.mean)")
        out = out.reshape(())
    return out


def _array(out: Any, tr: Tracer) -> Tensor:
    """`fn`'s output as an array of this trace: a traced one, or plain numbers as a constant."""
    if isinstance(out, Tensor) and out.tracer is tr:
        return out
    if isinstance(out, Tensor) or np.asarray(out).dtype.kind not in "iuf":
        raise InputError(f"fn returned {type(out).__name__}, not an array computed with refgrad ops")
    return tr.const(np.asarray(out, dtype=np.float64))
