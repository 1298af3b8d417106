"""Fingerprints of common gradient bugs: which simple wrong computation the candidate equals.

Only tensors where the candidate is wrong (|cand − exact| > tol somewhere) are examined,
cheapest hypothesis first (transforms.py): zeros, a sign flip or constant scale (named as a
rational and a dimension, e.g. 1/T), a transpose, permuted rows/columns/gate blocks; then
float64 variants of the graph (variants.py): a missing path, truncated BPTT, a wrong local
derivative, an index shift. A tensor stops at its first full match; if none fits, one
`nothing_fits` finding says so.
"""

from __future__ import annotations

import numpy as np

from refgrad.errors import ShapeError
from refgrad.graph.graph import Graph
from refgrad.score.findings import Finding
from refgrad.score.fit import Case, claim, num, short
from refgrad.score.transforms import CHECKS
from refgrad.score.variants import FAMILIES, variants_for


def fingerprint(graph: Graph, exact: dict[str, np.ndarray], candidate: dict[str, np.ndarray],
                tol: dict[str, np.ndarray], *, candidate_name: str = "analytic",
                dims: dict[str, int] | None = None) -> list[Finding]:
    """Findings naming the bug each wrong tensor of `candidate` matches (none if all correct)."""
    found: dict[str, Finding] = {}
    cases: list[Case] = []
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
                cases.append(Case(name, e, c.astype(np.float64), t, wrong, eps))
    for case in cases:
        for check in CHECKS:
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


# -- hypotheses from variant gradients ------------------------------------------------------------
def _variant_fits(graph: Graph, cases: list[Case], found: dict[str, Finding]) -> None:
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
                f = claim(case, v.kind, hyp, v.message, dict(v.evidence), tol)
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


# -- findings without a hypothesis --------------------------------------------------------
def _shape_finding(name: str, c: np.ndarray, e: np.ndarray, t: np.ndarray) -> Finding:
    """A (n, m) candidate for a (m, n) param that is its transpose; any other shape is an error."""
    if c.ndim == 2 and c.shape == e.shape[::-1]:
        with np.errstate(all="ignore"):
            if (np.abs(c.T.astype(np.float64) - e) <= t).all():
                return Finding("transpose", name, f"your gradient has the transposed shape "
                               f"{c.shape} and equals the exact gradient {e.shape} transposed",
                               {"shape": list(c.shape), "expected": list(e.shape)})
    raise ShapeError(f"candidate gradient {name!r} has shape {c.shape}, the parameter {e.shape}")


def _nothing_fits(cases: list[Case]) -> Finding:
    """One finding for all unexplained tensors, with each one's worst element (error / tol)."""
    ev, worst = {}, None
    for case in cases:
        with np.errstate(all="ignore"):
            err = np.where(np.isfinite(case.cand), np.abs(case.cand - case.exact), np.inf)
        i = np.unravel_index(int(np.argmax(err / np.maximum(case.tol, 1e-300))), err.shape)
        item = {"index": [int(j) for j in i], "candidate": num(case.cand[i]),
                "exact": num(case.exact[i]), "error": num(err[i]), "tol": num(case.tol[i]),
                "wrong": int(case.wrong.sum()), "elements": int(case.wrong.size)}
        ev[case.name] = item
        if worst is None or err[i] / max(case.tol[i], 1e-300) > worst[1]:
            worst = (case.name, err[i] / max(case.tol[i], 1e-300), item)
    name, _, w = worst
    names = ", ".join(repr(c.name) for c in cases)
    msg = (f"the gradient of {names} is wrong and none of the known bug patterns fits (zeros, "
           "sign, scale, transpose, permutation, a missing path, truncated BPTT, a wrong local "
           f"derivative, an index shift); worst element {name}{w['index'] or ''}: yours "
           f"{short(w['candidate'])}, exact {short(w['exact'])} (error {short(w['error'])}, "
           f"tolerance {short(w['tol'])})")
    return Finding("nothing_fits", cases[0].name if len(cases) == 1 else None, msg, ev)
