"""Bugs where the candidate is a simple transform of the exact gradient, computed from it alone:
zeroed entries, a sign flip or constant scale, a transpose, permuted rows/columns/gate blocks.

These are the cheap hypotheses, tried (in CHECKS order) before any variant of the graph.
"""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np

from refgrad.graph.graph import Graph
from refgrad.score.findings import Finding
from refgrad.score.fit import SHOW, Case, claim, short
from refgrad.score.naming import GATES, dimensions, name_factor


def _zero(case: Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """Zero where the exact gradient is not (a contribution never accumulated), else correct."""
    e, c, t = case.exact, case.cand, case.tol
    zeroed = (np.abs(c) <= t) & (np.abs(e) > t)
    if not zeroed.any():
        return None
    if (np.abs(c) <= t).all():
        return claim(case, "zero", np.zeros_like(e), f"your gradient of {case.name!r} is zero "
                     f"everywhere; the exact one is not (largest |exact| {short(np.abs(e).max())})",
                     {"zeros": int(zeroed.sum())})
    idx = [list(map(int, i)) for i in np.argwhere(zeroed)[:SHOW]]
    return claim(case, "zero", np.where(zeroed, 0.0, e),
                 f"{int(zeroed.sum())} of {e.size} entries are zero where the exact gradient is "
                 f"not, first at {', '.join(map(str, map(tuple, idx)))}; the rest is correct",
                 {"zeros": int(zeroed.sum()), "first_indices": idx})


def _scale(case: Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """cand ≈ k·exact: k from the median ratio and least squares, tried as a small rational
    first (1/T), the tolerance scaled by |k|; k = −1 is a sign flip."""
    e, c, t = case.exact, case.cand, case.tol
    big = (np.abs(e) > t) & np.isfinite(c)
    if big.sum() < 2:  # one number: any factor fits; only say a sign flip is consistent
        return claim(case, "sign", -e, "your gradient is the exact one with the sign flipped "
                     "(one entry: consistent with, not proof of, a sign flip)", {"factor": -1.0},
                     confidence=0.3) if big.sum() == 1 else None
    tries: list[Fraction | float] = []
    den = max([64] + [d[0] for d in dimensions(graph, dims)])  # 1/T also for T = 100
    for k in (float(np.median(c[big] / e[big])), float(np.sum(e[big] * c[big]) /
                                                        np.sum(e[big] ** 2))):
        if np.isfinite(k) and abs(k) > 1e-12 and abs(k - 1) > 1e-4:  # not round-off
            q = Fraction(k).limit_denominator(den)
            tries += [r for r in ([q] if q not in (0, 1) else []) + [k] if r not in tries]
    conf = 1.0 if big.sum() >= 4 else 0.6
    for r in tries:
        rf = float(r)
        tol = abs(rf) * t + case.eps * np.abs(c)
        if r == -1:
            f = claim(case, "sign", -e, "your gradient is the exact one with the sign flipped",
                      {"factor": -1.0}, tol, conf)
        else:
            text, ev = name_factor(r, graph, dims)
            f = claim(case, "scale", rf * e, f"your gradient is {rf:.6g} × the exact one{text}",
                      {"factor": rf, **ev}, tol, conf)
        if f is not None:
            return f
    return None


def _transpose(case: Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """exact.T (square), or the (n, m) transpose's buffer in the (m, n) layout."""
    e, t = case.exact, case.tol
    if e.ndim != 2:
        return None
    m, n = e.shape
    hyps = [(e.T, t.T, "your gradient is the exact one transposed")] if m == n else [
        (e.T.reshape(m, n), t.T.reshape(m, n), f"your gradient is the transpose's ({n}, {m}) "
         f"buffer read in the ({m}, {n}) layout (e.g. the gradient of W.T stored as W)"),
        (e.reshape(n, m).T, t.reshape(n, m).T, f"your gradient is the exact buffer read as "
         f"({n}, {m}) and transposed")]
    for hyp, tt, msg in hyps:
        f = claim(case, "transpose", hyp, msg, {"shape": [m, n]}, np.maximum(t, tt))
        if f is not None:
            return f
    return None


def _permutation(case: Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """Row blocks in another order (4 LSTM / 3 GRU gate blocks), then single rows or columns."""
    e, t = case.exact, case.tol
    for blocks, (letters, names) in GATES.items():
        if e.ndim == 0 or e.shape[0] % blocks or e.shape[0] < 2 * blocks:
            continue
        eb, tb = np.split(e, blocks), np.split(t, blocks)
        for perm in itertools.permutations(range(blocks)):
            if perm == tuple(range(blocks)):
                continue
            hyp = np.concatenate([eb[p] for p in perm])
            tol = np.maximum(t, np.concatenate([tb[p] for p in perm]))
            order = ",".join(letters[p] for p in perm)
            f = claim(case, "permutation", hyp, f"the {blocks} row blocks are permuted: your "
                      f"blocks hold the exact blocks {list(perm)}, i.e. order {order} where "
                      f"{','.join(letters)} is right (if these are the {names})",
                      {"axis": 0, "blocks": blocks, "block_order": list(perm)}, tol)
            if f is not None:
                return f
    if e.ndim < 2:
        return None
    for axis in (0, 1) if e.ndim == 2 else (0,):
        f = _axis_permutation(case, axis)
        if f is not None:
            return f
    return None


def _axis_permutation(case: Case, axis: int) -> Finding | None:
    """Rows (axis 0) or columns (axis 1) of the exact gradient in another order."""
    def rows(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, axis, 0).reshape(a.shape[axis], -1)
    e, c, t = rows(case.exact), rows(case.cand), rows(case.tol)
    n = e.shape[0]
    if n < 2 or n > 512 or n * n * e.shape[1] > 2e7:  # matching recurses up to n deep
        return None
    with np.errstate(all="ignore"):
        fits = (np.abs(c[:, None, :] - e[None, :, :])
                <= np.maximum(t[:, None, :], t[None, :, :])).all(axis=2)
    perm = _matching(fits)
    if perm is None or perm == list(range(n)):
        return None
    moved = {i: p for i, p in enumerate(perm) if i != p}
    what = "rows" if axis == 0 else "columns"
    pairs = ", ".join(f"{i}←{p}" for i, p in list(moved.items())[:SHOW])
    hyp = np.moveaxis(np.take(np.moveaxis(case.exact, axis, 0), perm, axis=0), 0, axis)
    tol = np.maximum(case.tol, np.moveaxis(np.take(np.moveaxis(case.tol, axis, 0), perm, axis=0),
                                           0, axis))
    return claim(case, "permutation", hyp, f"{what} permuted: {len(moved)} {what} hold the exact "
                 f"gradient of another (yours←exact: {pairs})",
                 {"axis": axis, "mapping": {str(i): int(p) for i, p in moved.items()}}, tol)


def _matching(fits: np.ndarray) -> list[int] | None:
    """A perfect matching of rows to columns of `fits`, staying on the diagonal where it can."""
    n = fits.shape[0]
    owner = [-1] * n
    for i in range(n):
        if fits[i, i]:
            owner[i] = i

    def augment(i: int, seen: set[int]) -> bool:
        for j in np.flatnonzero(fits[i]):
            if j not in seen:
                seen.add(j)
                if owner[j] == -1 or augment(owner[j], seen):
                    owner[j] = i
                    return True
        return False

    for i in range(n):
        if i not in owner and not augment(i, set()):
            return None
    perm = [0] * n
    for j, i in enumerate(owner):
        perm[i] = j
    return perm


CHECKS = (_zero, _scale, _transpose, _permutation)  # cheapest first; a tensor stops at a fit
