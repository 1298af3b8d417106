"""`check()`: score a user's analytic and numeric gradients against the exact one and say why
they differ — float round-off, the finite difference's step, a kink, or a bug (and which).

Analytic verdict: `correct` when every entry is within the error scale of its dtype
(see baseline.py), else `bug`. Numeric verdict per element from the FD error model: `kink` if
the stencil crosses one, `bug` if the error is far beyond what truncation and round-off
explain; per tensor `truncation`/`roundoff` when a consistent FD is ≥ 10× worse than at the
best step, else `ok`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refgrad.differentiate.finite_difference import check_step, finite_difference
from refgrad.graph.graph import Graph
from refgrad.reference import reference
from refgrad.score import candidates
from refgrad.score.baseline import baseline
from refgrad.score.fd_model import GRID, fd_model
from refgrad.score.findings import Finding
from refgrad.score.report import Report, TensorScore
from refgrad.trace.tracer import trace

CONSISTENT = 10.0  # an FD error up to 10x the predicted typical error is explained by the model
STEP_SLACK = 10.0  # ... and "ok" unless 10x worse than at the best step
DEFAULT_EPS = {"forward": 0.5, "backward": 0.5, "central": 1 / 3, "five_point": 0.2, "complex": None}


def default_eps(dtype: Any, scheme: str) -> float:
    """u^(1/2) one-sided, u^(1/3) central, u^(1/5) five-point; 1e-20 for the complex step."""
    p = DEFAULT_EPS[scheme]
    return 1e-20 if p is None else float((np.finfo(dtype).eps / 2) ** p)


def check(
    fn: Callable[..., Any] | Graph,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    analytic: Mapping[str, Any] | None = None,
    numeric: Mapping[str, Any] | None | bool = None,
    dtype: Any = None,
    eps: float | None = None,
    scheme: str = "central",
    digits: int = 30,
    dims: Mapping[str, int] | None = None,
    fingerprints: bool = True,
) -> Report:
    """Score `analytic` (backprop) and `numeric` (finite-difference) gradients of fn at params.

    Either may be absent; without `numeric`, refgrad computes its own FD in `dtype` at `eps`
    (numeric=False skips finite differences altogether: the analytic verdict alone, fast).
    dtype defaults to the candidates' dtype; eps to the textbook step for the scheme.
    """
    graph = fn if isinstance(fn, Graph) else trace(fn, params or {}, data)
    skip_fd = numeric is False
    a = candidates.validate("analytic", analytic, graph)
    n = candidates.validate("numeric", None if skip_fd else numeric, graph)
    if skip_fd and a is None:
        raise ValueError("check(numeric=False) needs an analytic gradient to score")
    dt = np.dtype(dtype) if dtype is not None else candidates.infer_dtype(a, n)
    if dt.kind != "f":
        raise ValueError(f"dtype must be a float dtype, got {dt}")
    eps_given = eps is not None
    eps = check_step(eps) if eps_given else default_eps(dt, scheme)
    ref = reference(graph, digits=digits)
    exact = ref.grad_as(np.float64)
    bl = baseline(graph, ref.grad, ref.value, dt)
    report = Report(ref, dt, scheme, eps, {k: TensorScore(k, exact[k], bl.scale[k]) for k in exact})
    report.baseline = bl
    if a is not None:
        _score_analytic(report, a, graph, dims, fingerprints)
    if skip_fd:
        report.finish()
        return report
    model = fd_model(graph, exact, dt, scheme, user_steps=n is not None)
    if n is not None and not eps_given:
        eps = report.eps = _infer_step(model, n)
        report.notes.append(f"eps was not given: the numeric gradient's errors fit a step of "
                            f"about {eps:.2g} best; pass eps for a firmer verdict")
    own = finite_difference(graph, dtype=dt, eps=eps, scheme=scheme)
    report.fd_model = model
    if model.truncation_free():
        report.findings.append(Finding("truncation_free", None, model.notes[0],
                                       {"degree": model.degree, "scheme": scheme}, 1.0, "numeric"))
    _score_numeric(report, own if n is None else n, own, model, graph, dims, fingerprints,
                   refgrad_fd=n is None)
    report.finish()
    return report


def _infer_step(model: Any, n: dict) -> float:
    """The grid step whose predicted errors best fit the observed ones (median log ratio)."""
    err = np.concatenate([np.abs(n[k].astype(np.float64) - g).ravel() for k, g in model.grad.items()])
    best, h_best = np.inf, 1e-3
    for h in GRID:
        p = np.concatenate([v.ravel() for v in model.predicted(h).values()])
        ok = (err > 0) & (p > 0) & np.isfinite(err)
        if ok.any():
            score = float(np.median(np.abs(np.log(err[ok] / p[ok]))))
            if score < best:
                best, h_best = score, float(h)
    return h_best


def _score_analytic(report: Report, a: dict, graph: Graph, dims: Any, fp: bool) -> None:
    verdict = "correct"
    for k, cand in a.items():
        ts = report.tensors[k]
        ts.analytic = cand
        bad = ~np.isfinite(cand)
        with np.errstate(all="ignore"):
            err = np.abs(cand.astype(np.float64) - ts.exact)
        ts.analytic_error = np.where(bad, np.inf, err)
        ts.analytic_verdict = "correct" if np.all(ts.analytic_error <= ts.scale) else "bug"
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            report.findings.append(Finding(
                "nonfinite", k, f"{int(bad.sum())} NaN/Inf entries, first at {idx}",
                {"count": int(bad.sum()), "first": list(idx)}))
        if ts.analytic_verdict == "bug":
            verdict = "bug"
    report.analytic_verdict = verdict
    if verdict == "bug" and fp:
        report.findings += _fingerprint(graph, report, a, {k: 4 * t.scale for k, t in report.tensors.items()},
                                        "analytic", dims)


def _score_numeric(report: Report, n: dict, own: Any, model: Any, graph: Graph, dims: Any,
                   fp: bool, refgrad_fd: bool) -> None:
    h = report.eps
    pred = model.predicted(h)
    ranks = {"ok": 0, "roundoff": 1, "truncation": 1, "kink": 2, "bug": 3}
    overall = "ok"
    step_quality = model.discrepancy(h) / max(model.discrepancy(model.best_step()), 1e-300)
    for k, cand in n.items():
        ts = report.tensors[k]
        ts.numeric = cand
        with np.errstate(all="ignore"):
            err = np.abs(cand.astype(np.float64) - ts.exact)
        err = np.where(np.isfinite(cand), err, np.inf)
        ts.numeric_error, ts.numeric_predicted = err, pred[k]
        kink = own.kinks[k] >= 0
        consistent = err <= CONSISTENT * pred[k] + ts.scale
        cls = np.where(kink, "kink", np.where(consistent, "ok", "bug"))
        ts.numeric_class, ts.kink_nodes = cls, own.kinks[k]
        if (cls == "bug").any():
            v = "bug"
        elif (cls == "kink").any():
            v = "kink"
        elif step_quality > STEP_SLACK:
            v = model.dominant(h)
        else:
            v = "ok"
        ts.numeric_verdict = v
        overall = max(overall, v, key=ranks.get)
        if (cls == "kink").any():
            report.findings.append(_kink_finding(graph, k, cls, own.kinks[k]))
    report.numeric_verdict = overall
    report.numeric_source = "refgrad" if refgrad_fd else "user"
    if overall == "bug" and fp:
        # a broken FD is often effectively one-sided: allow its truncation h/2·|f''| too
        tol = {k: CONSISTENT * t.numeric_predicted + t.scale + h / 2 * np.abs(model.derivative(k, 2))
               for k, t in report.tensors.items()}
        report.findings += _fingerprint(graph, report, n, tol, "numeric", dims)


def _kink_finding(graph: Graph, name: str, cls: np.ndarray, nodes: np.ndarray) -> Finding:
    idx = [tuple(int(i) for i in r) for r in np.argwhere(cls == "kink")]
    first = graph.nodes[int(nodes[idx[0]])]
    return Finding(
        "kink", name,
        f"{len(idx)} element(s) whose stencil crosses a kink of {first.op}"
        f"{' at ' + first.where if first.where else ''} (first {idx[0]}): their finite "
        "differences do not estimate the gradient; use a smaller step or skip them",
        {"count": len(idx), "elements": [list(i) for i in idx[:20]], "primitive": first.op,
         "where": first.where}, 1.0, "numeric")


def _fingerprint(graph: Graph, report: Report, cand: dict, tol: dict, name: str, dims: Any) -> list:
    from refgrad.score.fingerprints import fingerprint

    exact = {k: t.exact for k, t in report.tensors.items()}
    return fingerprint(graph, exact, cand, tol, candidate_name=name, dims=dict(dims or {}))
