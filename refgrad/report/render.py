"""Human-readable text for a Report: verdict line first, then the worst elements per tensor."""

from __future__ import annotations

from typing import Any

import numpy as np

from refgrad.reference import format_mpf

ROWS = 5


def _g(x: float, n: int = 3) -> str:
    return "inf" if not np.isfinite(x) else f"{x:.{n}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = lambda cells: "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return [line(header), line(["-" * w for w in widths])] + [line(r) for r in rows]


def render_report(r: Any) -> str:
    out = [r.summary, ""]
    ref = r.reference
    out.append(f"loss = {format_mpf(ref.value, ref.value_digits, 20)}   "
               f"(exact reference, {ref.certified_digits} certified digits; dtype {r.dtype.name})")
    for name, t in r.tensors.items():
        for which in ("analytic", "numeric"):
            verdict = getattr(t, f"{which}_verdict")
            if verdict is None:
                continue
            digits = ref.format_grad(name, 10)
            rows = []
            for idx in t.worst(which, ROWS):
                cand = getattr(t, which)[idx]
                err = getattr(t, f"{which}_error")[idx]
                row = [str(idx), digits[idx], f"{float(cand):.9g}", _g(err), _g(t.scale[idx])]
                if which == "analytic":
                    row += [_g(t.ulps("analytic", r.dtype)[idx], 2), _g(t.matching_digits("analytic")[idx], 2)]
                else:
                    row += [_g(t.numeric_predicted[idx]), str(t.numeric_class[idx])]
                rows.append(row)
            head = ["index", "exact (certified)", which, "|error|", "error scale"]
            head += ["ulps", "digits"] if which == "analytic" else ["predicted", "class"]
            out += ["", f"{which} {name} {t.exact.shape}: {verdict}  (worst elements first)"]
            out += ["  " + s for s in _table(head, rows)]
    if r.findings:
        out += ["", "findings:"] + [f"  - {f}" for f in r.findings]
    m = r.metrics
    if "discrepancy" in m:
        out += ["", "the forum's and cs231n's measures, side by side with ours:",
                f"  ‖a−n‖/(‖a‖+‖n‖) = {_g(m['discrepancy'])};  cs231n max |a−n|/max(|a|,|n|) = "
                f"{_g(m['cs231n_max_relative_error'])} ({m['cs231n_flagged']} entries above 1e-2)"]
    if r.numeric_verdict:
        out += [f"  numeric vs exact: {_g(m['numeric_vs_exact_discrepancy'])} observed, "
                f"{_g(m['predicted_numeric_discrepancy'])} predicted by the error model "
                f"(noise σ_f = {_g(m['evaluation_noise'])}); best step ≈ {_g(m['predicted_best_step'], 2)}"]
    out += [f"note: {n}" for n in r.notes]
    return "\n".join(out)
