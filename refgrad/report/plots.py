"""Plots people would rather see than read (matplotlib: the `plot` extra)."""

from __future__ import annotations

from typing import Any

from refgrad.errors import RefgradError
from refgrad.report.files import atomic_write


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - exercised only without the extra
        raise RefgradError("plots need matplotlib: pip install 'refgrad[plot]'") from None
    return plt


def plot_sweep(s: Any, path: str) -> str:
    """The log-log V curve: observed FD discrepancy and the error model's prediction vs step
    (a PNG written atomically; an existing file is replaced)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    ax.loglog(s.steps, s.observed, "o", color="C0", label="observed (refgrad FD vs exact)")
    ax.loglog(s.steps, s.predicted, "-", color="C1", label="predicted (error model)")
    ax.axvline(s.best_observed, color="C0", ls=":", lw=1, label=f"best observed {s.best_observed:.2g}")
    ax.axvline(s.best_predicted, color="C1", ls="--", lw=1, label=f"best predicted {s.best_predicted:.2g}")
    ax.set_xlabel("step eps")
    ax.set_ylabel("discrepancy ‖n − g‖ / (‖n‖ + ‖g‖)")
    ax.set_title(f"{s.scheme} difference in {s.dtype.name}: error vs step")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    try:
        atomic_write(path, lambda f: fig.savefig(f, format="png"), overwrite=True)
    finally:
        plt.close(fig)
    return path
