"""`sweep()`: refgrad's own finite differences over many steps against the exact gradient,
beside the error model's prediction — the V-shaped curve that explains "the sweet spot"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refgrad.differentiate.finite_difference import SCHEMES, finite_difference
from refgrad.errors import InputError
from refgrad.graph.graph import Graph
from refgrad.reference import reference
from refgrad.score.baseline import check_representable
from refgrad.score.fd_model import fd_model
from refgrad.score.report import discrepancy
from refgrad.trace.tracer import trace


@dataclass
class Sweep:
    dtype: np.dtype
    scheme: str
    steps: np.ndarray
    observed: np.ndarray  # discrepancy ‖n − g‖/(‖n‖ + ‖g‖) of refgrad's FD
    observed_max: np.ndarray  # max element error |n − g|
    predicted: np.ndarray  # the error model's discrepancy at each step
    best_observed: float
    best_predicted: float
    findings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype.name, "scheme": self.scheme,
            "steps": self.steps.tolist(), "observed": self.observed.tolist(),
            "observed_max": self.observed_max.tolist(), "predicted": self.predicted.tolist(),
            "best_observed": self.best_observed, "best_predicted": self.best_predicted,
            "findings": list(self.findings),
        }

    def table(self) -> str:
        rows = [f"{'step':>10}  {'observed':>10}  {'predicted':>10}  {'max |n-g|':>10}"]
        for h, o, p, m in zip(self.steps, self.observed, self.predicted, self.observed_max):
            mark = "  <- best observed" if h == self.best_observed else ""
            rows.append(f"{h:10.3g}  {o:10.3g}  {p:10.3g}  {m:10.3g}{mark}")
        rows.append(f"best step: observed {self.best_observed:.3g}, predicted {self.best_predicted:.3g}")
        rows += [f"- {f}" for f in self.findings]
        return "\n".join(rows)

    def plot(self, path: str) -> str:
        from refgrad.report.plots import plot_sweep

        return plot_sweep(self, path)


def default_steps(dtype: Any, scheme: str, n: int = 25) -> np.ndarray:
    lo = {2: -10.0, 4: -6.0, 8: -14.0}.get(np.dtype(dtype).itemsize, -10.0)
    if scheme == "complex":
        lo = -20.0
    return np.logspace(lo, 0, n)


def sweep(
    fn: Callable[..., Any] | Graph,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    dtype: Any = np.float32,
    scheme: str = "central",
    steps: Any = None,
    digits: int = 30,
    progress: Callable[[int, int], None] | None = None,
) -> Sweep:
    """FD error against step size, observed and predicted, and the best step of each."""
    if scheme not in SCHEMES:
        raise InputError(f"unknown scheme {scheme!r}: use one of {', '.join(SCHEMES)}")
    graph = fn if isinstance(fn, Graph) else trace(fn, params or {}, data)
    dt = np.dtype(dtype)
    check_representable(graph, dt)
    steps = default_steps(dt, scheme) if steps is None else np.asarray(steps, dtype=np.float64)
    if steps.ndim != 1 or not steps.size or np.any(~np.isfinite(steps)) or np.any(steps <= 0):
        raise InputError("steps must be a non-empty list of positive numbers")
    ref = reference(graph, digits=digits)
    exact = ref.grad_as(np.float64)
    g = np.concatenate([v.ravel() for v in exact.values()])
    model = fd_model(graph, exact, dt, scheme, user_steps=False)
    obs, mx = [], []
    for i, h in enumerate(steps):
        if progress:
            progress(i + 1, len(steps))
        fd = finite_difference(graph, dtype=dt, eps=float(h), scheme=scheme)
        n = np.concatenate([fd[k].astype(np.float64).ravel() for k in exact])
        obs.append(discrepancy(n, g) if np.all(np.isfinite(n)) else np.inf)
        mx.append(float(np.max(np.abs(n - g))))
    obs_a = np.array(obs)
    pred = np.array([model.discrepancy(float(h)) for h in steps])
    s = Sweep(dt, scheme, steps, obs_a, np.array(mx), pred,
              float(steps[int(np.argmin(obs_a))]), model.best_step(steps))
    s.findings += model.notes
    if not model.truncation_free():
        power = {"central": 2, "complex": 2, "five_point": 4}.get(scheme, 1)
        s.findings.append(
            f"below the best step round-off dominates (error ∝ 1/eps, noise σ_f = {model.sigma_f:.2g}); "
            f"above it truncation does (∝ eps^{power})"
        )
    return s
