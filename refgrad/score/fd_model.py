"""The finite-difference error model: what error a correct FD has at step h, element by element.

    truncation  from the exact higher derivatives along the coordinate:
                forward/backward h/2·f'' + h²/6·f''',  central h²/6·f''' + h⁴/120·f⁽⁵⁾,
                five-point h⁴/30·f⁽⁵⁾,  complex step h²/6·f'''
    round-off   c·σ_f/h, σ_f the measured evaluation noise of f in the dtype, c = √Σw² of
                the stencil weights (central 1/√2)
    step        for a user's FD that adds h in the dtype and divides by the nominal step:
                |g|·ρ·ulp(x)/h, the error of representing x ± h (ρ: central 0.2, one-sided 0.29)

When the loss is a polynomial of degree d (proved from the graph), every derivative of order
> d is identically zero: if that kills the truncation term, the FD is exact up to round-off
and a larger step is better — the third user story.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refgrad.differentiate.finite_difference import STENCILS
from refgrad.differentiate.taylor import coordinate_derivatives
from refgrad.evaluate.backends import engine, get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.precision import round_array
from refgrad.graph.degree import polynomial_degree
from refgrad.graph.graph import Graph

ORDER = {"forward": 3, "backward": 3, "central": 3, "five_point": 5, "complex": 3}
STEP_RHO = {"forward": 0.29, "backward": 0.29, "central": 0.2, "five_point": 0.2, "complex": 0.0}
GRID = np.logspace(-12, 1, 131)


def _roundoff_factor(scheme: str) -> float:
    if scheme == "complex":
        return 0.0
    return math.sqrt(sum(float(w) ** 2 for w in STENCILS[scheme][1]))


@dataclass
class FDModel:
    """Per-element error model of a finite-difference scheme in one dtype at one point."""

    scheme: str
    dtype: np.dtype
    grad: dict[str, np.ndarray]  # exact gradient (float64)
    derivs: dict[str, np.ndarray]  # (order, *shape): f', f'', ... along each coordinate
    point: dict[str, np.ndarray]
    sigma_f: float  # RMS evaluation noise of f in the dtype
    degree: int | None  # proved polynomial degree of the loss, or None
    user_steps: bool = True  # the user's FD adds h in the dtype and divides by the nominal h
    notes: list[str] = field(default_factory=list)

    def derivative(self, name: str, k: int) -> np.ndarray:
        """f^(k) along each coordinate (exactly 0 when proved so)."""
        if self.degree is not None and k > self.degree:
            return np.zeros(self.grad[name].shape)
        d = self.derivs[name]
        return d[k - 1] if k <= d.shape[0] else np.zeros(self.grad[name].shape)

    def truncation(self, h: Any) -> dict[str, np.ndarray]:
        s, out = self.scheme, {}
        for k in self.grad:
            if s in ("forward", "backward"):
                sign = 1 if s == "forward" else -1
                t = sign * h / 2 * self.derivative(k, 2) + h**2 / 6 * self.derivative(k, 3)
            elif s == "central":
                t = h**2 / 6 * self.derivative(k, 3) + h**4 / 120 * self.derivative(k, 5)
            elif s == "five_point":
                t = -(h**4) / 30 * self.derivative(k, 5)
            else:
                t = -(h**2) / 6 * self.derivative(k, 3)
            out[k] = np.abs(t)
        return out

    def roundoff(self, h: Any) -> dict[str, np.ndarray]:
        c = _roundoff_factor(self.scheme)
        u = float(np.finfo(self.dtype).eps) / 2 if self.scheme != "complex" else 2.0**-53
        out = {}
        for k, g in self.grad.items():
            r = c * self.sigma_f / h + (u * np.abs(g) if self.scheme == "complex" else 0.0)
            if self.user_steps and self.scheme != "complex":
                ulp = np.spacing(np.abs(self.point[k]).astype(self.dtype)).astype(np.float64)
                r = np.sqrt(r**2 + (STEP_RHO[self.scheme] * np.abs(g) * ulp / h) ** 2)
            out[k] = np.broadcast_to(r, g.shape).astype(np.float64)
        return out

    def predicted(self, h: Any) -> dict[str, np.ndarray]:
        """Typical |FD − exact| per element: √(truncation² + round-off²)."""
        t, r = self.truncation(h), self.roundoff(h)
        return {k: np.sqrt(t[k] ** 2 + r[k] ** 2) for k in t}

    def discrepancy(self, h: float) -> float:
        """Predicted ‖n − g‖/(‖n‖ + ‖g‖) (the forum's discrepancy) at one step for all, with
        ‖n‖ ≈ √(‖g‖² + ‖e‖²) (errors uncorrelated with g), so it saturates at 1 like the real one."""
        e = self.predicted(h)
        num = math.sqrt(sum(float(np.sum(v**2)) for v in e.values()))
        gn = math.sqrt(sum(float(np.sum(g**2)) for g in self.grad.values()))
        den = gn + math.sqrt(gn**2 + num**2)
        return num / den if den else math.inf

    def best_step(self, steps: Any = GRID) -> float:
        """The step minimising the predicted discrepancy (a search over `steps`)."""
        return float(steps[int(np.argmin([self.discrepancy(float(h)) for h in steps]))])

    def dominant(self, h: float) -> str:
        """'truncation' or 'roundoff': which term dominates the predicted error overall."""
        t = sum(float(np.sum(v**2)) for v in self.truncation(h).values())
        r = sum(float(np.sum(v**2)) for v in self.roundoff(h).values())
        return "truncation" if t > r else "roundoff"

    def truncation_free(self) -> bool:
        need = {"forward": 2, "backward": 2, "central": 3, "five_point": 5, "complex": 3}
        return self.degree is not None and self.degree < need[self.scheme]


def evaluation_noise(graph: Graph, dtype: Any, samples: int = 16, seed: int = 0) -> float:
    """RMS of f_dtype − f_exact over points near x: the noise a finite difference divides by h.

    "Exact" needs only be far more accurate than the dtype: float64 for float16/float32,
    80-bit long double (or MPFR where long double is just float64) for float64.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    pts = {}
    for k, i in graph.params.items():
        x = np.asarray(graph.values[i], dtype=np.float64)
        jitter = 1 + 1e-3 * rng.standard_normal((samples,) + x.shape)
        pts[k] = (x * jitter).astype(dtype).astype(np.float64)
    lo = forward(graph, get_backend(dtype.name), pts, batched=True)[graph.output]
    exact = _accurate_values(graph, pts, dtype)
    return float(np.sqrt(np.mean((lo.astype(np.float64) - exact) ** 2)))


def _accurate_values(graph: Graph, pts: dict, dtype: np.dtype) -> np.ndarray:
    if dtype.itemsize <= 4:
        return forward(graph, get_backend("float64"), pts, batched=True)[graph.output]
    if np.finfo(np.longdouble).nmant >= 63:
        return forward(graph, get_backend("longdouble"), pts, batched=True)[graph.output].astype(np.float64)
    b = get_backend(engine("mp"), 128)
    ex = forward(graph, b, pts, batched=True, check_domain=False)
    with b.context():
        vals = np.asarray(b.to_mpf(np.asarray(ex[graph.output], dtype=object)), dtype=object)
    return round_array(vals, np.float64)


def fd_model(graph: Graph, exact: dict[str, np.ndarray], dtype: Any, scheme: str = "central",
             *, user_steps: bool = True) -> FDModel:
    """Build the error model: exact higher derivatives (Taylor mode), noise, proved degree."""
    dtype = np.dtype(dtype)
    degree = polynomial_degree(graph)
    order = ORDER[scheme]
    if degree is not None:
        order = max(1, min(order, degree))
    derivs = coordinate_derivatives(graph, get_backend("float64"), order=order)
    point = {k: np.asarray(graph.values[i], dtype=np.float64) for k, i in graph.params.items()}
    noise_dtype = np.float64 if scheme == "complex" else dtype
    m = FDModel(scheme, dtype, exact, derivs, point, evaluation_noise(graph, noise_dtype),
                degree, user_steps)
    if m.truncation_free():
        m.notes.append(
            f"the loss is a polynomial of degree {degree} in the params (proved from the graph), "
            f"so the {scheme} difference has no truncation error: its error is pure round-off "
            "∝ 1/eps, and a larger step is better"
        )
    return m
