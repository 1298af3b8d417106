"""Validate a user's gradient (a dict like params) before scoring it: keys, shapes, finiteness."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refgrad.errors import InputError, ShapeError
from refgrad.graph.graph import Graph


def validate(kind: str, cand: Mapping[str, Any] | None, graph: Graph) -> dict[str, np.ndarray] | None:
    """The candidate as float arrays keyed like params; a clear error naming what is off."""
    if cand is None:
        return None
    if not isinstance(cand, Mapping):
        raise InputError(f"the {kind} gradient must be a dict of name -> array like params")
    want = set(graph.params)
    got = set(map(str, cand))
    if got != want:
        missing, extra = sorted(want - got), sorted(got - want)
        raise ShapeError(
            f"the {kind} gradient's keys do not match params: "
            + "; ".join(s for s in (missing and f"missing {missing}", extra and f"unknown {extra}") if s)
        )
    out = {}
    for k, v in cand.items():
        arr = np.asarray(v)
        shape = graph.nodes[graph.params[str(k)]].shape
        if arr.dtype.kind not in "iuf":
            raise InputError(f"{kind} gradient {k!r} has dtype {arr.dtype}; expected floats")
        if arr.shape != shape:
            if arr.size == int(np.prod(shape)) and arr.ndim <= 1:
                arr = arr.reshape(shape)  # flat dumps (C++ users) take the param's shape
            else:
                raise ShapeError(f"{kind} gradient {k!r} has shape {arr.shape}, param {k!r} has {shape}")
        out[str(k)] = arr if arr.dtype.kind == "f" else arr.astype(np.float64)
    return out


def infer_dtype(*cands: dict[str, np.ndarray] | None) -> np.dtype:
    """The narrowest float dtype among the candidates (float64 if none is narrower)."""
    dts = [a.dtype for c in cands if c for a in c.values() if a.dtype.kind == "f"]
    return min(dts, key=lambda d: d.itemsize) if dts else np.dtype(np.float64)
