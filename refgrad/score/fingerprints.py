"""Fingerprints of common gradient bugs: which simple wrong computation the candidate equals.

Only tensors where the candidate is wrong (|cand − exact| > tol somewhere) are examined,
cheapest hypothesis first: zeros, a sign flip or constant scale (named as a rational and a
dimension, e.g. 1/T), a transpose, permuted rows/columns/gate blocks; then float64 variants of
the graph (variants.py): a missing path, truncated BPTT, a wrong local derivative, an index
shift. A tensor stops at its first full match; if none fits, one `nothing_fits` finding says so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.errors import ShapeError
from refgrad.graph.graph import Graph
from refgrad.score.findings import Finding
from refgrad.score.variants import FAMILIES, GATES, variants_for

NEAR = 0.95  # a fit on this fraction of the elements (and of the wrong ones) has confidence < 1
SHOW = 5  # indices listed in a message


@dataclass
class _Case:
    """One wrong tensor: exact and candidate as float64, the tolerance, where it is wrong."""

    name: str
    exact: np.ndarray
    cand: np.ndarray
    tol: np.ndarray
    wrong: np.ndarray
    eps: float  # the candidate dtype's machine epsilon
    near: tuple[float, Finding] | None = None

    def score(self, hyp: np.ndarray, tol: np.ndarray | None = None) -> tuple[float, np.ndarray]:
        """Fraction of elements (and of wrong ones) with |cand − hyp| <= tol: 1.0 is a full fit."""
        with np.errstate(all="ignore"):
            ok = np.abs(self.cand - hyp) <= (self.tol if tol is None else tol)
        if ok.all():
            return 1.0, ok
        return float(min(ok.mean(), ok[self.wrong].mean())), ok

    def evidence(self, hyp: np.ndarray, ok: np.ndarray) -> dict[str, Any]:
        with np.errstate(all="ignore"):
            return {"elements": int(ok.size), "wrong": int(self.wrong.sum()),
                    "matched": int(ok.sum()),
                    "max_error_vs_exact": _f(np.nanmax(np.abs(self.cand - self.exact))),
                    "max_error_vs_hypothesis": _f(np.nanmax(np.abs(self.cand - hyp)))}


def fingerprint(graph: Graph, exact: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
                tol: dict[str, np.ndarray], *, candidate_name: str = "analytic",
                dims: dict[str, int] | None = None) -> list[Finding]:
    """Findings naming the bug each wrong tensor of `candidate` matches (none if all correct)."""
    found: dict[str, Finding] = {}
    cases: list[_Case] = []
    for name, ex in exact.items():
        e = np.asarray(ex, dtype=np.float64)
        t = np.broadcast_to(np.asarray(tol[name], dtype=np.float64), e.shape)
        c = candidate.get(name)
        if c is None:
            found[name] = Finding("zero", name, f"no gradient was given for {name!r}: the whole "
                                  "tensor is missing", {"elements": int(e.size)})
        elif np.shape(c) != e.shape:
            found[name] = _shape_finding(name, np.asarray(c), e, t)
        else:
            c = np.asarray(c)
            with np.errstate(all="ignore"):
                wrong = ~(np.abs(c.astype(np.float64) - e) <= t)
            eps = float(np.finfo(c.dtype).eps) if c.dtype.kind == "f" else 0.0
            if wrong.any():
                cases.append(_Case(name, e, c.astype(np.float64), t, wrong, eps))
    for case in cases:
        for check in (_zero, _scale, _transpose, _permutation):
            f = check(case, graph, dims or {})
            if f is not None:
                found[case.name] = f
                break
    if any(c.name not in found for c in cases):
        _variant_fits(graph, [c for c in cases if c.name not in found], found)
    for case in cases:
        if case.name not in found and case.near is not None:
            found[case.name] = case.near[1]
    rest = [c for c in cases if c.name not in found]
    if rest:
        found[rest[0].name] = _nothing_fits(rest)
    out = [found[name] for name in exact if name in found]
    for f in out:
        f.candidate = candidate_name
    return out


# -- hypotheses computed from the exact gradient alone --------------------------------------------
def _claim(case: _Case, kind: str, hyp: np.ndarray, message: str, ev: dict[str, Any],
           tol: np.ndarray | None = None, confidence: float = 1.0) -> Finding | None:
    """A finding if hyp fits all elements; remember it as the best near fit otherwise."""
    s, ok = case.score(hyp, tol)
    if s < NEAR:
        return None
    f = Finding(kind, case.name, message, {**ev, **case.evidence(hyp, ok)}, confidence)
    if s == 1.0:
        return f
    f.confidence = round(0.9 * s * confidence, 3)
    off = [tuple(map(int, i)) for i in np.argwhere(~ok)[:SHOW]]
    f.evidence["not_matched_first"] = [list(i) for i in off]
    f.message = (f"nearly ({int(ok.sum())} of {ok.size} elements; not at "
                 f"{', '.join(map(str, off))}{', …' * bool(ok.size - ok.sum() > SHOW)}): {message}")
    if case.near is None or s > case.near[0]:
        case.near = (s, f)
    return None


def _zero(case: _Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """Zero where the exact gradient is not (a contribution never accumulated), else correct."""
    e, c, t = case.exact, case.cand, case.tol
    zeroed = (np.abs(c) <= t) & (np.abs(e) > t)
    if not zeroed.any():
        return None
    if (np.abs(c) <= t).all():
        return _claim(case, "zero", np.zeros_like(e), f"your gradient of {case.name!r} is zero "
                      f"everywhere; the exact one is not (largest |exact| {_g(np.abs(e).max())})",
                      {"zeros": int(zeroed.sum())})
    idx = [list(map(int, i)) for i in np.argwhere(zeroed)[:SHOW]]
    return _claim(case, "zero", np.where(zeroed, 0.0, e),
                  f"{int(zeroed.sum())} of {e.size} entries are zero where the exact gradient is "
                  f"not, first at {', '.join(map(str, map(tuple, idx)))}; the rest is correct",
                  {"zeros": int(zeroed.sum()), "first_indices": idx})


def _scale(case: _Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
    """cand ≈ k·exact: k from the median ratio and least squares, tried as a small rational
    first (1/T), the tolerance scaled by |k|; k = −1 is a sign flip."""
    e, c, t = case.exact, case.cand, case.tol
    big = (np.abs(e) > t) & np.isfinite(c)
    if big.sum() < 2:  # one number: any factor fits; only say a sign flip is consistent
        return _claim(case, "sign", -e, "your gradient is the exact one with the sign flipped "
                      "(one entry: consistent with, not proof of, a sign flip)", {"factor": -1.0},
                      confidence=0.3) if big.sum() == 1 else None
    tries: list[Fraction | float] = []
    den = max([64] + [d[0] for d in _dimensions(graph, dims)])  # 1/T also for T = 100
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
            f = _claim(case, "sign", -e, "your gradient is the exact one with the sign flipped",
                       {"factor": -1.0}, tol, conf)
        else:
            text, ev = _name_factor(r, graph, dims)
            f = _claim(case, "scale", rf * e, f"your gradient is {rf:.6g} × the exact one{text}",
                       {"factor": rf, **ev}, tol, conf)
        if f is not None:
            return f
    return None


def _transpose(case: _Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
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
        f = _claim(case, "transpose", hyp, msg, {"shape": [m, n]}, np.maximum(t, tt))
        if f is not None:
            return f
    return None


def _permutation(case: _Case, graph: Graph, dims: dict[str, int]) -> Finding | None:
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
            f = _claim(case, "permutation", hyp, f"the {blocks} row blocks are permuted: your "
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


def _axis_permutation(case: _Case, axis: int) -> Finding | None:
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
    return _claim(case, "permutation", hyp, f"{what} permuted: {len(moved)} {what} hold the exact "
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


# -- hypotheses from variant gradients ------------------------------------------------------------
def _variant_fits(graph: Graph, cases: list[_Case], found: dict[str, Finding]) -> None:
    """Try each variant family in turn on the tensors still unexplained.

    Where several variants of a family fit a tensor, the one fitting the most tensors wins (one
    bug explaining the whole gradient); ties at that count lower the confidence.
    """
    vs = variants_for(graph)
    u64 = float(np.finfo(np.float64).eps) * 8
    for fam in FAMILIES:
        todo = [c for c in cases if c.name not in found and c.name in vs.base]
        if not todo:
            return
        variants = vs.family(fam)
        fits: dict[str, list[tuple[Finding, int]]] = {}
        for case in todo:
            for vi, v in enumerate(variants):
                hyp = v.grad[case.name]
                tol = case.tol + vs.roundoff[case.name] + u64 * np.abs(hyp)
                if (np.abs(hyp - case.exact) <= tol).all():
                    continue  # this variant changes nothing for the tensor
                f = _claim(case, v.kind, hyp, v.message, dict(v.evidence), tol)
                if f is not None:
                    fits.setdefault(case.name, []).append((f, vi))
        cover = [sum(vi == j for fl in fits.values() for _, vi in fl) for j in range(len(variants))]
        for name, fl in fits.items():
            fl.sort(key=lambda fv: -cover[fv[1]])
            f, vi = fl[0]
            tied = [w for _, w in fl if cover[w] == cover[vi]]
            also = variants[vi].equivalent + [variants[w].message for _, w in fl[1:]]
            if also:
                f.evidence["also_fits"] = also
            f.evidence["tensors_explained"] = cover[vi]
            f.confidence = round(1.0 / len(tied), 3)
            found[name] = f


# -- naming ---------------------------------------------------------------------------------
def _dimensions(graph: Graph, dims: dict[str, int]) -> list[tuple[int, str, str]]:
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


def _name_factor(r: Fraction | float, graph: Graph, dims: dict[str, int]) -> tuple[str, dict]:
    """': scale 1/10 = 1/T (axis 0 of data 'xs', the number of time steps)' and its evidence."""
    if not isinstance(r, Fraction):
        return "", {}
    ds = _dimensions(graph, dims)

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


def _shape_finding(name: str, c: np.ndarray, e: np.ndarray, t: np.ndarray) -> Finding:
    """A (n, m) candidate for a (m, n) param that is its transpose; any other shape is an error."""
    if c.ndim == 2 and c.shape == e.shape[::-1]:
        with np.errstate(all="ignore"):
            if (np.abs(c.T.astype(np.float64) - e) <= t).all():
                return Finding("transpose", name, f"your gradient has the transposed shape "
                               f"{c.shape} and equals the exact gradient {e.shape} transposed",
                               {"shape": list(c.shape), "expected": list(e.shape)})
    raise ShapeError(f"candidate gradient {name!r} has shape {c.shape}, the parameter {e.shape}")


def _nothing_fits(cases: list[_Case]) -> Finding:
    """One finding for all unexplained tensors, with each one's worst element (error / tol)."""
    ev, worst = {}, None
    for case in cases:
        with np.errstate(all="ignore"):
            err = np.where(np.isfinite(case.cand), np.abs(case.cand - case.exact), np.inf)
        i = np.unravel_index(int(np.argmax(err / np.maximum(case.tol, 1e-300))), err.shape)
        item = {"index": [int(j) for j in i], "candidate": _f(case.cand[i]),
                "exact": _f(case.exact[i]), "error": _f(err[i]), "tol": _f(case.tol[i]),
                "wrong": int(case.wrong.sum()), "elements": int(case.wrong.size)}
        ev[case.name] = item
        if worst is None or err[i] / max(case.tol[i], 1e-300) > worst[1]:
            worst = (case.name, err[i] / max(case.tol[i], 1e-300), item)
    name, _, w = worst
    names = ", ".join(repr(c.name) for c in cases)
    msg = (f"the gradient of {names} is wrong and none of the known bug patterns fits (zeros, "
           "sign, scale, transpose, permutation, a missing path, truncated BPTT, a wrong local "
           f"derivative, an index shift); worst element {name}{w['index'] or ''}: yours "
           f"{_g(w['candidate'])}, exact {_g(w['exact'])} (error {_g(w['error'])}, tolerance "
           f"{_g(w['tol'])})")
    return Finding("nothing_fits", cases[0].name if len(cases) == 1 else None, msg, ev)


def _f(x: Any) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


def _g(x: Any) -> str:
    return "nan" if x is None else f"{float(x):.4g}"
