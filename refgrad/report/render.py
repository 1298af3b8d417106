"""Human-readable text for a Report: the verdict line, one row per tensor (its worst element),
then the findings — identical ones across tensors merged — and the forum's measures beside ours."""

from __future__ import annotations

from typing import Any

import numpy as np

from refgrad.reference import format_mpf


def _g(x: float, n: int = 3) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.{n}g}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """Right-aligned columns; first column left-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def merged_findings(findings: list[Any]) -> list[str]:
    """One line per distinct (candidate, kind, message), naming every tensor it holds for."""
    groups: dict[tuple, list[str]] = {}
    for f in findings:
        msg = f.message
        groups.setdefault((f.candidate, f.kind, msg), []).append(f.tensor or "")
    out = []
    for (cand, kind, msg), tensors in groups.items():
        where = [t for t in tensors if t]
        names = f" in {', '.join(where)}" if where else ""
        out.append(f"{cand}: {kind}{names}: {msg}")
    return out


def _rows(r: Any, which: str, per_tensor: int) -> list[list[str]]:
    rows = []
    ref = r.reference
    for name, t in r.tensors.items():
        if getattr(t, f"{which}_verdict") is None:
            continue
        digits = ref.format_grad(name, 10)
        for k, idx in enumerate(t.worst(which, per_tensor)):
            cand = getattr(t, which)[idx]
            err = getattr(t, f"{which}_error")[idx]
            row = [name if k == 0 else "", getattr(t, f"{which}_verdict") if k == 0 else "",
                   str(idx), digits[idx], f"{float(cand):.9g}", _g(err), _g(t.scale[idx])]
            if which == "analytic":
                row += [_g(t.ulps("analytic", r.dtype)[idx], 2), _g(t.matching_digits("analytic")[idx], 2)]
            else:
                row += [_g(t.numeric_predicted[idx]), str(t.numeric_class[idx])]
            rows.append(row)
    return rows


def render_report(r: Any, per_tensor: int = 1) -> str:
    ref = r.reference
    out = [r.summary, "",
           f"loss = {format_mpf(ref.value, ref.value_digits, 20)}   (exact, {ref.certified_digits} "
           f"certified digits; your dtype {r.dtype.name}; error scale = what {r.dtype.name} "
           "round-off can do to each entry)"]
    for which in ("analytic", "numeric"):
        rows = _rows(r, which, per_tensor)
        if not rows:
            continue
        head = ["tensor", "verdict", "worst index", "exact (certified)", which, "|error|", "error scale"]
        head += ["ulps", "digits"] if which == "analytic" else ["predicted", "class"]
        out += ["", f"{which} gradient, worst element{'s' if per_tensor > 1 else ''} per tensor:"]
        out += ["  " + s for s in table(head, rows)]
        if which == "numeric":
            counts = {c: sum(int((t.numeric_class == c).sum()) for t in r.tensors.values())
                      for c in ("ok", "kink", "bug")}
            out.append("  elements: " + ", ".join(f"{v} {k}" for k, v in counts.items() if v))
    if r.findings:
        out += ["", "findings:"] + [f"  - {s}" for s in merged_findings(r.findings)]
    m = r.metrics
    if "discrepancy" in m or r.numeric_verdict:
        out += ["", "the forum's and cs231n's measures, beside ours:"]
    if "discrepancy" in m:
        out.append(f"  ‖a−n‖/(‖a‖+‖n‖) = {_g(m['discrepancy'])};  cs231n max |a−n|/max(|a|,|n|) = "
                   f"{_g(m['cs231n_max_relative_error'])} ({m['cs231n_flagged']} entries above 1e-2)")
    if r.numeric_verdict:
        out.append(f"  numeric vs exact: {_g(m['numeric_vs_exact_discrepancy'])} observed, "
                   f"{_g(m['predicted_numeric_discrepancy'])} predicted by the error model "
                   f"(noise σ_f = {_g(m['evaluation_noise'])}); "
                   f"best step ≈ {_g(m['predicted_best_step'], 2)}")
    out += [f"note: {n}" for n in r.notes]
    return "\n".join(out)
