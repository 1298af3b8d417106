"""Assertions in the style of numpy.testing, judged against refgrad's exact gradient.

    from refgrad.testing import assert_gradient_close
    assert_gradient_close(my_backprop(params, data), loss, params, data, dtype=np.float32)

passes when every entry is within the round-off a correct implementation in that dtype makes
(the error scale of `refgrad.check`), and otherwise fails with what a person needs to fix it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from refgrad.errors import InputError, ShapeError
from refgrad.graph.graph import Graph
from refgrad.reference import format_mpf
from refgrad.score import candidates
from refgrad.score.diagnose import check
from refgrad.trace.tracer import trace

__all__ = ["assert_gradient_close"]


def assert_gradient_close(actual: Mapping[str, Any] | Any, fn: Callable[..., Any] | Graph,
                          params: Mapping[str, Any] | None = None,
                          data: Mapping[str, Any] | None = None, *, dtype: Any = None,
                          digits: int = 30, worst: int = 5, err_msg: str = "") -> None:
    """Raise AssertionError unless `actual` (a dict like params, or one array when there is one
    param) is the gradient of fn at params up to round-off in `dtype` (default: actual's dtype).

    The message names each failing tensor, its `worst` elements (index, exact, actual, error,
    scale), the verdict and the bug fingerprints refgrad recognised (scale, sign, transpose...).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    graph = fn if isinstance(fn, Graph) else trace(fn, params or {}, data)
    if not isinstance(actual, Mapping):
        if len(graph.params) != 1:
            raise TypeError(f"actual must be a dict keyed like params {sorted(graph.params)}")
        actual = {next(iter(graph.params)): actual}
    try:
        cand = candidates.validate("analytic", actual, graph)
    except (ShapeError, InputError) as e:
        raise AssertionError(_join(err_msg, f"gradient does not match params: {e}")) from None
    report = check(graph, analytic=cand, numeric=False, dtype=dtype, digits=digits)
    if report.analytic_verdict == "correct":
        return
    raise AssertionError(_join(err_msg, failure_message(report, worst)))


def failure_message(report: Any, worst: int = 5) -> str:
    """The text of a failed assertion, from a `check` Report with an analytic candidate."""
    dt = report.dtype.name
    lines = [f"gradient is not close to the exact gradient (verdict: {report.analytic_verdict}; "
             f"errors beyond what {dt} round-off explains)"]
    for name, ts in report.tensors.items():
        if ts.analytic_verdict == "correct":
            continue
        bad = ~(ts.analytic_error <= ts.scale)
        with np.errstate(all="ignore"):
            ratio = float(np.max(ts.analytic_error / ts.scale))
        lines.append(f" tensor {name!r} {ts.exact.shape}: {int(bad.sum())} of {bad.size} "
                     f"element(s) beyond the {dt} error scale (max error/scale {ratio:.3g}); worst:")
        lines.append(f"   {'index':<14}{'exact':>24}{'actual':>24}{'error':>12}{'scale':>12}")
        exact = report.reference.grad[name]
        for idx in ts.worst("analytic", worst):
            if not bad[idx]:
                break
            lines.append(f"   {str(idx):<14}{format_mpf(exact[idx], 15):>24}"
                         f"{str(ts.analytic[idx]):>24}{ts.analytic_error[idx]:>12.3g}"
                         f"{ts.scale[idx]:>12.3g}")
    found = [f for f in report.findings if f.candidate == "analytic"]
    lines.append(" findings:" if found else " findings: none of refgrad's bug fingerprints fits")
    lines += [f"   {f}" for f in found]
    return "\n".join(lines)


def _join(err_msg: str, text: str) -> str:
    return f"{err_msg}\n{text}" if err_msg else text
