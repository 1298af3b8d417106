"""Taylor mode: exact univariate jets pushed forward through a graph along parameter directions.

Along a direction v every node value becomes a truncated polynomial y(t) = Σ_{j≤K} y_j t^j of
x(t) = x0 + t·v, so d^j/dt^j f(x0 + t·v)|₀ = j!·f_j. Coefficients j ≥ 1 carry one leading batch
axis (many directions per sweep); coefficient 0 is the plain forward value. The finite-difference
error model uses f'' and f''' along every coordinate: O(K²) forward sweeps per chunk of directions.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.errors import InputError
from refgrad.evaluate.backends import Backend, get_backend
from refgrad.evaluate.forward import as_array, forward
from refgrad.graph.graph import Graph
from refgrad.primitives import REGISTRY, Elementwise, Structural

MAX_ORDER = 5

Poly = list  # [None, c_1, ..., c_K]: batched coefficient arrays, None meaning exactly zero


def _evaluate(d: Any, b: Backend, x0s: list) -> Any:
    """A compiled derivative at the point; on float backends, entries whose textbook formula
    overflows (sigmoid''' = e^{-a}·…/(1+e^{-a})^4 at a = −750 is inf/inf) are redone in mp."""
    val = d(b, *x0s)
    if not b.is_float:
        return val
    val = np.array(np.broadcast_to(val, np.broadcast_shapes(*map(np.shape, x0s))), dtype=b.dtype)
    bad = ~np.isfinite(val)
    if bad.any():
        mp = get_backend("mp", 113)
        try:
            with mp.context():
                args = [mp.asarray(np.broadcast_to(x, val.shape)[bad]) for x in x0s]
                redo = np.broadcast_to(np.asarray(d(mp, *args), dtype=object), (int(bad.sum()),))
            with b.context():
                val[bad] = b.asarray(redo)
        except (ArithmeticError, TypeError, ValueError):  # outside the domain: NaN stays NaN
            pass
    return val


# --- truncated polynomial arithmetic (index 0 is always None: no constant term) -------------
def _add(a: Any, c: Any) -> Any:
    return c if a is None else a + c


def _polymul(p: Poly, q: Poly, K: int) -> Poly:
    """(p·q) truncated at t^K, for p, q without constant terms."""
    out: Poly = [None] * (K + 1)
    for k in range(2, K + 1):
        for i in range(1, k):
            if p[i] is not None and q[k - i] is not None:
                out[k] = _add(out[k], p[i] * q[k - i])
    return out


def _elementwise(prim: Elementwise, b: Backend, x0s: list, cs: list, K: int) -> Poly | None:
    """y(t) = Σ_α ∂^α f(x0)/α! · Π_i (x_i(t) − x_i0)^{α_i}, truncated at order K."""
    active = [i for i, c in enumerate(cs) if c is not None]
    if not active:
        return None
    powers: dict[tuple[int, int], Poly] = {}

    def power(i: int, m: int) -> Poly:
        if (i, m) not in powers:
            powers[(i, m)] = cs[i] if m == 1 else _polymul(power(i, m - 1), cs[i], K)
        return powers[(i, m)]

    out: Poly = [None] * (K + 1)
    for alpha in prim.multi_indices(K):
        if any(a and c is None for a, c in zip(alpha, cs, strict=True)):
            continue
        kind, d = prim.derivative(alpha)
        if kind == "zero":
            continue
        scale = Fraction(1, math.prod(math.factorial(a) for a in alpha))
        mode = "mul"
        if kind == "const":  # skip multiplying by ±1 (add, sub, neg, ...)
            q = Fraction(int(d.p), int(d.q)) * scale
            mode, coef = ("id" if q == 1 else "neg" if q == -1 else "mul"), b.const(q)
        else:
            coef = _evaluate(d, b, x0s)
            coef = coef if scale == 1 else coef * b.const(scale)
        term: Poly | None = None
        for i in active:
            if alpha[i]:
                pw = power(i, alpha[i])
                term = pw if term is None else _polymul(term, pw, K)
        for j in range(sum(alpha), K + 1):
            t = term[j]
            if t is not None:
                out[j] = _add(out[j], t if mode == "id" else -t if mode == "neg" else coef * t)
    return out if any(c is not None for c in out) else None


# --- structural -----------------------------------------------------------------------------
def _batched(b: Backend, c: Any, x0: Any, B: int) -> Any:
    """A coefficient as a batched array: zeros for None, x0 broadcast for coefficient 0."""
    zero = np.asarray(b.const(0), dtype=b.dtype)
    return np.broadcast_to(zero, (B,) + x0.shape) if c is None else c


def _structural(prim: Structural, node: Any, b: Backend, x0s: list, cs: list, out0: Any,
                K: int, B: int) -> Poly | None:
    """Linear: forward of the coefficients (Cauchy product if multilinear); else the hook."""
    a = node.attrs

    def fwd(xs: Sequence[Any]) -> Any:
        return as_array(prim.forward(b, list(xs), a, 1), b)

    out: Poly = [None] * (K + 1)
    if not prim.linear:
        if prim.taylor is None:
            raise NotImplementedError(f"primitive {prim.name!r} has no Taylor rule")
        coeffs = [list(x0s)] + [
            [_batched(b, None if c is None else c[k], x0, B) for c, x0 in zip(cs, x0s, strict=True)]
            for k in range(1, K + 1)
        ]
        res = prim.taylor(b, coeffs, a, out0)
        return [None] + [as_array(r, b) for r in res[1:]]
    if len(cs) == 1:
        return [None] + [None if c is None else fwd([c]) for c in cs[0][1:]]
    if prim.joint:
        for k in range(1, K + 1):
            parts = [None if c is None else c[k] for c in cs]
            if any(p is not None for p in parts):
                out[k] = fwd([_batched(b, p, x0, B) for p, x0 in zip(parts, x0s, strict=True)])
        return out
    zero_order = [np.broadcast_to(x0, (B,) + x0.shape) for x0 in x0s]
    for k in range(1, K + 1):
        for split in itertools.product(range(k + 1), repeat=len(cs)):
            if sum(split) != k:
                continue
            parts = [zero_order[i] if s == 0 else None if cs[i] is None else cs[i][s]
                     for i, s in enumerate(split)]
            if all(p is not None for p in parts):
                out[k] = _add(out[k], fwd(parts))
    return out


# --- the sweep ------------------------------------------------------------------------------
def _sweep(graph: Graph, b: Backend, vals: list, seeds: Mapping[int, Any], K: int) -> Poly:
    """Output polynomial for x(t) = x0 + t·seed at the given leaves (batched seeds)."""
    B = next(iter(seeds.values())).shape[0]
    live = graph.live
    polys: list[Poly | None] = [None] * len(graph.nodes)
    with b.context():
        for n in graph.nodes:
            if not live[n.id]:
                continue
            if n.is_leaf:
                if n.id in seeds:
                    polys[n.id] = [None, seeds[n.id]] + [None] * (K - 1)
                continue
            cs = [None if (n.id, p) in graph.cut_edges else polys[i]
                  for p, i in enumerate(n.inputs)]
            if all(c is None for c in cs):
                continue
            prim = REGISTRY[n.op]
            x0s = [vals[i] for i in n.inputs]
            if isinstance(prim, Elementwise):
                polys[n.id] = _elementwise(prim, b, x0s, cs, K)
            else:
                polys[n.id] = _structural(prim, n, b, x0s, cs, vals[n.id], K, B)
        res = polys[graph.output] or [None] * (K + 1)
        zero = b.zeros((B,))
        return [vals[graph.output]] + [zero if c is None else as_array(c, b) for c in res[1:]]


def _check_order(order: int) -> int:
    if not (isinstance(order, (int, np.integer)) and 1 <= order <= MAX_ORDER):
        raise InputError(f"Taylor order must be an integer in 1..{MAX_ORDER}, got {order!r}")
    return int(order)


def taylor_coefficients(graph: Graph, backend: Backend, directions: Mapping[str, Any],
                        order: int = 3, params: Mapping[str, np.ndarray] | None = None) -> list:
    """Taylor coefficients [f0, f1, ..., f_order] of t -> f(x + t·v); f_j has shape (B,).

    `directions` maps param names to arrays of shape (B, *param.shape) (B directions) or
    param.shape (one); params left out do not move. f0 is the value at the point.
    """
    K = _check_order(order)
    vals = forward(graph, backend, params)
    seeds, B = {}, None
    for name, v in directions.items():
        if name not in graph.params:
            raise InputError(f"no param named {name!r}; params: {', '.join(graph.params)}")
        shape = graph.nodes[graph.params[name]].shape
        v = np.asarray(v)
        v = v.reshape((1,) + shape) if v.shape == shape else v
        if v.shape[1:] != shape or (B is not None and v.shape[0] != B):
            raise InputError(f"direction for {name!r} has shape {v.shape}; want (B, *{shape})")
        B = v.shape[0]
        with backend.context():
            seeds[graph.params[name]] = backend.asarray(v)
    if not seeds:
        raise InputError("taylor_coefficients needs at least one direction")
    return _sweep(graph, backend, vals, seeds, K)


def _directional(graph: Graph, b: Backend, vals: list, param: str, K: int, index: Any,
                 chunk: int) -> np.ndarray:
    if param not in graph.params:
        raise InputError(f"no param named {param!r}; params: {', '.join(graph.params)}")
    pid = graph.params[param]
    shape = graph.nodes[pid].shape
    n = math.prod(shape)
    idx = np.arange(n) if index is None else np.asarray(index, dtype=np.intp).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise InputError(f"index out of range for param {param!r} with {n} coordinates")
    idx = idx % max(n, 1)
    out = np.empty((K, idx.size), dtype=b.dtype)
    for start in range(0, idx.size, chunk):
        sl = idx[start:start + chunk]
        seed = np.zeros((sl.size, n))
        seed[np.arange(sl.size), sl] = 1.0
        with b.context():
            seed = b.asarray(seed.reshape((sl.size,) + shape))
        coeffs = _sweep(graph, b, vals, {pid: seed}, K)
        with b.context():
            for j in range(1, K + 1):
                out[j - 1, start:start + sl.size] = coeffs[j] * b.const(math.factorial(j))
    return out


def directional(graph: Graph, backend: Backend, param: str, order: int = 3, index: Any = None,
                params: Mapping[str, np.ndarray] | None = None, *, chunk: int = 64) -> np.ndarray:
    """d^j/dt^j f(x + t·e_k)|₀ for j = 1..order along coordinate k of `param`: (order, n).

    k runs over all flat coordinates of `param`, or over the flat indices in `index`.
    Directions go `chunk` at a time through one batched sweep (memory ~ chunk × forward).
    """
    K = _check_order(order)
    vals = forward(graph, backend, params)
    return _directional(graph, backend, vals, param, K, index, max(1, int(chunk)))


def coordinate_derivatives(graph: Graph, backend: Backend, order: int = 3,
                           params: Mapping[str, np.ndarray] | None = None, *,
                           chunk: int = 64) -> dict[str, np.ndarray]:
    """{param: array (order, *shape)}: f', f'', ... along every coordinate of every param."""
    K = _check_order(order)
    vals = forward(graph, backend, params)
    out = {}
    for name, pid in graph.params.items():
        d = _directional(graph, backend, vals, name, K, None, max(1, int(chunk)))
        out[name] = d.reshape((K,) + graph.nodes[pid].shape)
    return out
