"""One wrong tensor and how a hypothesis about it is judged: a fit on every element is a
finding; a fit on most of them (NEAR) is kept as the tensor's best near fit, in case none fits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refgrad.score.findings import Finding

NEAR = 0.95  # a fit on this fraction of the elements (and of the wrong ones) has confidence < 1
SHOW = 5  # indices listed in a message


@dataclass
class Case:
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
        """The JSON evidence of a hypothesis: element counts and the largest errors."""
        with np.errstate(all="ignore"):
            return {"elements": int(ok.size), "wrong": int(self.wrong.sum()),
                    "matched": int(ok.sum()),
                    "max_error_vs_exact": num(np.nanmax(np.abs(self.cand - self.exact))),
                    "max_error_vs_hypothesis": num(np.nanmax(np.abs(self.cand - hyp)))}


def claim(case: Case, kind: str, hyp: np.ndarray, message: str, ev: dict[str, Any],
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


def num(x: Any) -> float | None:
    """A number for the JSON evidence: a float, or None if it is not finite."""
    x = float(x)
    return x if np.isfinite(x) else None


def short(x: Any) -> str:
    """A number for a message, to 4 significant digits ('nan' for None)."""
    return "nan" if x is None else f"{float(x):.4g}"
