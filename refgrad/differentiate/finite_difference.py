"""Finite differences computed by refgrad on the traced model, in the user's dtype.

Every stencil point of every coordinate goes through one batched forward pass. Steps are made
exactly representable: h_eff = fl(x + h) − x, so the points are x + k·h_eff exactly and the
divisor is the true step (points where that cannot hold are flagged in `.inexact`).

    forward    (f(x+h) − f(x)) / h                       error ≈ h/2·f''
    backward   (f(x) − f(x−h)) / h                       error ≈ h/2·f''
    central    (f(x+h) − f(x−h)) / 2h                    error ≈ h²/6·f'''
    five_point (−f(x+2h) + 8f(x+h) − 8f(x−h) + f(x−2h)) / 12h   error ≈ h⁴/30·f⁽⁵⁾
    complex    Im f(x + ih) / h   (complex128; no cancellation)   error ≈ h²/6·f'''
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.errors import InputError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.kinks import crossed, kink_sides
from refgrad.graph.graph import Graph
from refgrad.trace.tracer import trace

# scheme -> (offsets k, weights w): f' ≈ Σ w·f(x + k·h) / h
STENCILS: dict[str, tuple[tuple[int, ...], tuple[Fraction, ...]]] = {
    "forward": ((0, 1), (Fraction(-1), Fraction(1))),
    "backward": ((-1, 0), (Fraction(-1), Fraction(1))),
    "central": ((-1, 1), (Fraction(-1, 2), Fraction(1, 2))),
    "five_point": ((-2, -1, 1, 2), (Fraction(1, 12), Fraction(-8, 12), Fraction(8, 12), Fraction(-1, 12))),
}
SCHEMES = (*STENCILS, "complex")
MEMORY = 2e8  # bytes of node values per batched forward pass


class FiniteDifference(dict):
    """name -> FD gradient (dtype arrays, same shapes as params); `.steps` the h used per
    element, `.inexact` where the stencil points could not all be made exact, `.kinks` the
    node id of a kink the stencil crosses (−1 where none)."""

    steps: dict[str, np.ndarray]
    inexact: dict[str, np.ndarray]
    kinks: dict[str, np.ndarray]
    scheme: str
    dtype: np.dtype


def check_step(eps: Any) -> float:
    try:
        e = float(eps)
    except (TypeError, ValueError):
        raise InputError(f"eps must be a positive number, got {eps!r}") from None
    if not np.isfinite(e) or e <= 0:
        raise InputError(f"eps must be a positive finite number, got {eps!r}")
    return e


def steps_for(x: np.ndarray, eps: float, relative: bool, dtype: np.dtype) -> np.ndarray:
    """Exactly representable steps h_eff = fl(x + h) − x (h = eps, or eps·|x| if relative)."""
    h = eps * np.where(x != 0, np.abs(x), 1.0) if relative else np.full(x.shape, eps)
    with np.errstate(all="ignore"):
        xp = (x + h).astype(dtype).astype(np.float64)
    h_eff = xp - x
    # a step below the dtype's spacing at x rounds away: take one spacing instead (the smallest
    # step the dtype can make there)
    ulp = np.spacing(np.abs(x).astype(dtype)).astype(np.float64)
    return np.where(h_eff > 0, h_eff, ulp)


def finite_difference(
    fn: Callable[..., Any] | Graph,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    dtype: Any = np.float32,
    eps: float = 1e-3,
    scheme: str = "central",
    relative: bool = False,
    wrt: list[str] | None = None,
) -> FiniteDifference:
    """The finite-difference gradient of fn at params, evaluated in `dtype`."""
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    eps = check_step(eps)
    graph = fn if isinstance(fn, Graph) else trace(fn, params or {}, data)
    dtype = np.dtype(np.complex128 if scheme == "complex" else dtype)
    names = list(graph.params) if wrt is None else wrt
    out = FiniteDifference()
    out.steps, out.inexact, out.kinks, out.scheme, out.dtype = {}, {}, {}, scheme, dtype
    point = {k: np.asarray(graph.values[i]) for k, i in graph.params.items()}
    f64 = get_backend("float64")
    sides0 = kink_sides(graph, f64, forward(graph, f64)) if scheme != "complex" else {}
    for name in names:
        x = point[name].astype(np.float64)
        if scheme == "complex":
            h = np.full(x.shape, eps) if not relative else eps * np.where(x != 0, np.abs(x), 1.0)
            vals, _ = _batched(graph, name, point, [x.reshape(-1) + 1j * h.reshape(-1)], dtype, {})
            out[name] = (np.imag(vals[0]) / h.reshape(-1)).reshape(x.shape)
            out.steps[name], out.inexact[name] = h, np.zeros(x.shape, bool)
            out.kinks[name] = np.full(x.shape, -1)
            continue
        fdt = np.dtype(dtype)
        offsets, weights = STENCILS[scheme]
        h = steps_for(x, eps, relative, fdt)
        xs = [x.reshape(-1) + k * h.reshape(-1) for k in offsets]
        exact = np.all([xk.astype(fdt).astype(np.float64) == xk for xk in xs], axis=0)
        need = [k != 0 for k in offsets]
        f0 = forward(graph, get_backend(fdt.name))[graph.output] if not all(need) else None
        fx, kinks = _batched(graph, name, point, [xk for xk, n in zip(xs, need) if n], fdt, sides0)
        it = iter(fx)
        fk = [next(it) if n else np.full(x.size, f0, dtype=fdt) for n in need]
        acc = np.zeros(x.size, dtype=fdt)
        with np.errstate(all="ignore"):
            for w, f in zip(weights, fk):
                acc = acc + fdt.type(float(w)) * f
            out[name] = (acc / h.reshape(-1).astype(fdt)).reshape(x.shape).astype(fdt)
        out.steps[name], out.inexact[name] = h, ~exact.reshape(x.shape)
        out.kinks[name] = kinks.reshape(x.shape)
    return out


def _batched(graph: Graph, name: str, point: dict, columns: list[np.ndarray],
             dtype: np.dtype, sides0: dict) -> tuple[list, np.ndarray]:
    """f at x with coordinate j of `name` replaced by columns[c][j], for every c and j; and
    per coordinate the first kink node any of its stencil points lies across (−1: none),
    judged against the kink sides at the point (`sides0`)."""
    b = get_backend(dtype.name)
    base = point[name]
    n = base.size
    per_eval = sum(int(np.prod(nd.shape)) for nd in graph.nodes) * dtype.itemsize
    chunk = max(1, int(MEMORY // max(per_eval, 1)))
    kink = np.full(n, -1)
    results = []
    for col in columns:
        vals = np.empty(n, dtype=dtype)
        for start in range(0, n, chunk):
            idx = np.arange(start, min(n, start + chunk))
            batch = np.broadcast_to(base.astype(dtype), (idx.size,) + base.shape).copy()
            batch.reshape(idx.size, -1)[np.arange(idx.size), idx] = col[idx].astype(dtype)
            node_vals = forward(graph, b, {name: batch}, batched=True)
            vals[idx] = node_vals[graph.output]
            if sides0:
                _, first = crossed(graph, sides0, kink_sides(graph, b, node_vals))
                kink[idx] = np.where(kink[idx] < 0, first, kink[idx])
        results.append(vals)
    return results, kink
