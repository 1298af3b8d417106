"""The Report `check()` returns: verdicts first, then per-tensor numbers, then findings."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refgrad.reference import format_mpf
from refgrad.score.findings import Finding

CS231N = 1e-2  # the threshold cs231n's notes suggest for |a−n|/max(|a|,|n|)


@dataclass
class TensorScore:
    """Per-element numbers for one parameter tensor (float64 arrays shaped like the param)."""

    name: str
    exact: np.ndarray
    scale: np.ndarray  # the error scale: how far round-off can move each entry in the dtype
    analytic: np.ndarray | None = None
    analytic_error: np.ndarray | None = None
    analytic_verdict: str | None = None
    numeric: np.ndarray | None = None
    numeric_error: np.ndarray | None = None
    numeric_predicted: np.ndarray | None = None
    numeric_class: np.ndarray | None = None  # ok / kink / bug per element
    numeric_verdict: str | None = None
    kink_nodes: np.ndarray | None = None

    def ulps(self, which: str, dtype: Any) -> np.ndarray:
        """|candidate − exact| in units of the dtype's spacing at the exact value."""
        err = getattr(self, f"{which}_error")
        return err / np.spacing(np.abs(self.exact).astype(dtype)).astype(np.float64)

    def matching_digits(self, which: str) -> np.ndarray:
        """−log10 of the relative error (inf where equal)."""
        err = getattr(self, f"{which}_error")
        with np.errstate(all="ignore"):
            return -np.log10(err / np.abs(self.exact))

    def worst(self, which: str, k: int = 5) -> list[tuple[int, ...]]:
        """Indices of the k elements with the largest error relative to the error scale."""
        err = getattr(self, f"{which}_error")
        ref = self.scale if which == "analytic" else np.maximum(self.numeric_predicted, self.scale)
        with np.errstate(all="ignore"):
            r = np.nan_to_num(err / ref, nan=np.inf, posinf=np.inf).ravel()
        order = np.argsort(-r, kind="stable")[:k]
        return [tuple(int(i) for i in np.unravel_index(j, self.exact.shape)) for j in order]


def discrepancy(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / (‖a‖ + ‖b‖): the measure the forum posts quote."""
    den = np.linalg.norm(a) + np.linalg.norm(b)
    return float(np.linalg.norm(a - b) / den) if den else 0.0


def cs231n(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a − b| / max(|a|, |b|) per element (cs231n's relative error; 0 where both are 0)."""
    with np.errstate(all="ignore"):
        r = np.abs(a - b) / np.maximum(np.abs(a), np.abs(b))
    return np.nan_to_num(r, nan=0.0)


@dataclass
class Report:
    reference: Any
    dtype: np.dtype
    scheme: str
    eps: float
    tensors: dict[str, TensorScore]
    analytic_verdict: str | None = None
    numeric_verdict: str | None = None
    numeric_source: str = "user"
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    baseline: Any = None
    fd_model: Any = None

    def _flat(self, attr: str) -> np.ndarray:
        return np.concatenate([np.asarray(getattr(t, attr), dtype=np.float64).ravel()
                               for t in self.tensors.values()])

    def finish(self) -> None:
        """Compute the headline metrics once all candidates are scored."""
        g = self._flat("exact")
        m = self.metrics
        has_a = self.analytic_verdict is not None
        has_n = self.numeric_verdict is not None
        if has_a:
            a = self._flat("analytic")
            m["analytic_vs_exact_discrepancy"] = discrepancy(a, g)
            ratio = self._flat("analytic_error") / self._flat("scale")
            m["analytic_max_error_over_scale"] = float(np.max(ratio))
        if has_n:
            n = self._flat("numeric")
            m["numeric_vs_exact_discrepancy"] = discrepancy(n, g)
            m["predicted_numeric_discrepancy"] = self.fd_model.discrepancy(self.eps)
            m["predicted_best_step"] = self.fd_model.best_step()
            m["evaluation_noise"] = self.fd_model.sigma_f
        if has_a and has_n:
            m["discrepancy"] = discrepancy(a, n)
            r = cs231n(a, n)
            m["cs231n_max_relative_error"] = float(r.max())
            m["cs231n_flagged"] = int((r > CS231N).sum())

    @property
    def summary(self) -> str:
        """The one line a person reads first."""
        parts = []
        if self.analytic_verdict:
            bugs = [f for f in self.findings if f.candidate == "analytic" and f.kind != "nonfinite"]
            why = ""
            if self.analytic_verdict == "bug" and bugs:
                same = [f.tensor for f in bugs if f.kind == bugs[0].kind and f.message == bugs[0].message]
                where = "every tensor" if len(same) == len(self.tensors) else ", ".join(map(str, same))
                why = f" — {bugs[0].kind} in {where}: {bugs[0].message}"
            if self.analytic_verdict == "correct":
                why = f" (within {self.dtype.name} round-off)"
            parts.append(f"analytic: {self.analytic_verdict.upper()}{why}")
        if self.numeric_verdict:
            m = self.metrics
            parts.append(
                f"numeric ({self.numeric_source} {self.scheme} FD, eps {self.eps:.3g}): "
                f"{self.numeric_verdict.upper()} (discrepancy {m['numeric_vs_exact_discrepancy']:.2g}, "
                f"predicted {m['predicted_numeric_discrepancy']:.2g}, "
                f"best step ≈ {m['predicted_best_step']:.2g})"
            )
        return "; ".join(parts)

    @property
    def ok(self) -> bool:
        """True when the user's own candidates pass (refgrad's own FD counts only when it is
        the only thing checked)."""
        own_fd_only_context = self.numeric_source == "refgrad" and self.analytic_verdict is not None
        numeric_ok = own_fd_only_context or self.numeric_verdict in (None, "ok")
        return self.analytic_verdict in (None, "correct") and numeric_ok

    def to_dict(self) -> dict[str, Any]:
        def cand(which: str, verdict: str | None) -> dict | None:
            if verdict is None:
                return None
            per = {}
            for k, t in self.tensors.items():
                per[k] = {"verdict": getattr(t, f"{which}_verdict"),
                          "max_error": float(np.max(getattr(t, f"{which}_error"))),
                          "worst": [list(i) for i in t.worst(which, 3)]}
                if which == "numeric":
                    per[k]["elements"] = {c: int((t.numeric_class == c).sum()) for c in ("ok", "kink", "bug")}
            return {"verdict": verdict, "tensors": per,
                    "findings": [f.to_dict() for f in self.findings if f.candidate == which]}

        return {
            "summary": self.summary,
            "dtype": self.dtype.name, "scheme": self.scheme, "eps": self.eps,
            "loss": format_mpf(self.reference.value, self.reference.value_digits),
            "certified_digits": self.reference.certified_digits,
            "analytic": cand("analytic", self.analytic_verdict),
            "numeric": cand("numeric", self.numeric_verdict),
            "findings": [f.to_dict() for f in self.findings],
            "metrics": self.metrics, "notes": self.notes,
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), indent=2, default=_jsonable, **kw)

    def __str__(self) -> str:
        from refgrad.report.render import render_report

        return render_report(self)

    def text(self, per_tensor: int = 1) -> str:
        """The text report with the `per_tensor` worst elements of every tensor."""
        from refgrad.report.render import render_report

        return render_report(self, per_tensor)


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
