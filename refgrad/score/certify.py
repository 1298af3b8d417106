"""`certify()`: is a hand-derived gradient formula the exact derivative of the loss?

Verdicts: `proved` (sympy reduces formula − ∂L/∂wrt to 0 for every element, for all params and
varied data at the given sizes), `holds_numerically` (equal to `digits` digits at K random
points, no proof), `refuted` (a concrete point, both values, and the elements that differ).
Points are checked first (the given one, then random ones, re-drawn at kinks and outside the
domain); then the proof: stop_gradient inputs (softmax's max) become free symbols, so it holds
whichever value they take; graphs with kinks, or too deep or large, are not proved.

The formula's forms (a refgrad function, or sympy over element symbols as a string, dict,
Matrix or array) are described in score/formula.py.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from refgrad.errors import DomainError, InputError, KinkError, PrecisionError
from refgrad.evaluate.backends import digits_to_bits, get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph
from refgrad.graph.to_sympy import exact, to_sympy
from refgrad.primitives import REGISTRY
from refgrad.reference import format_mpf, reference
from refgrad.score.baseline import weighted_depth
from refgrad.score.formula import Formula
from refgrad.trace.tracer import trace

# beyond these sizes sympy's expressions explode (an LSTM over 3 steps has depth 47): numeric only
MAX_PROOF_DEPTH, MAX_PROOF_ELEMENTS = 40.0, 20000
_Formula = Formula  # the name tests/score/test_certify.py imports


@dataclass
class Certificate:
    """The verdict, a one-line message, and for `refuted` a counterexample dict: params, data
    (the point), elements (indices of wrt that differ), formula and exact (their values, first 20)."""

    verdict: str  # proved | holds_numerically | refuted
    message: str
    wrt: str
    points_checked: int
    digits: int
    counterexample: dict[str, Any] | None = None
    proof: str = ""  # what the symbolic step did, or why it did not prove

    @property
    def ok(self) -> bool:
        return self.verdict != "refuted"

    def to_dict(self) -> dict[str, Any]:
        """JSON-able: arrays as nested lists, indices as lists."""
        cx = self.counterexample and {k: ({n: a.tolist() for n, a in v.items()} if k in
                                          ("params", "data") else [list(i) if isinstance(i, tuple)
                                                                   else i for i in v])
                                      for k, v in self.counterexample.items()}
        return {**dataclasses.asdict(self), "counterexample": cx}

    def __str__(self) -> str:
        return self.message


def certify(formula: Any, fn: Callable[..., Any], params: Mapping[str, Any],
            data: Mapping[str, Any] | None = None, *, wrt: str | None = None, points: int = 8,
            digits: int = 30, seed: int = 0, vary_data: bool | tuple[str, ...] = True,
            indices: tuple[str, ...] | None = None, prove: bool = True,
            prove_timeout: float = 10.0) -> Certificate:
    """Certify `formula` as ∂fn/∂params[wrt]: numerically at `points` points, then by proof.

    vary_data: which float data are drawn at random (True: all; False: none, e.g. one-hot
    targets the formula relies on); the proof holds for all values of those, at the given others.
    """
    if points < 1:
        raise ValueError(f"points must be at least 1, got {points}")
    params = {str(k): np.asarray(v) for k, v in params.items()}
    data = {str(k): np.asarray(v) for k, v in (data or {}).items()}
    graph = trace(fn, params, data)
    if wrt is None:
        if len(params) != 1:
            raise InputError(f"pass wrt=: the formula is for one of {sorted(params)}")
        wrt = next(iter(params))
    if wrt not in params:
        raise InputError(f"wrt={wrt!r} is not a param (params: {sorted(params)})")
    form = Formula(formula, graph, {k: v for k, v in data.items() if k not in graph.data},
                    wrt, indices)
    vary = set(graph.data) if vary_data is True else set(vary_data or ())
    if vary - set(graph.data):
        raise InputError(f"vary_data names {sorted(vary - set(graph.data))}, which are not "
                         f"float data (float data: {sorted(graph.data)})")
    rng = np.random.default_rng(seed)
    checked, attempts, last_err = 0, 0, ""
    while checked < points and attempts < 20 * max(points, 1):
        p, d = _draw(rng, attempts, params, data, vary)
        attempts += 1
        try:
            ref = reference(fn, p, d, digits=digits + 5, on_kink="raise")
            got, slack = form.at(p, d, ref.prec)
        except (DomainError, KinkError, PrecisionError) as e:
            last_err = str(e)
            continue
        checked += 1
        bad = _differ(got, slack, ref.grad[wrt], digits)
        if bad:
            cx = {"params": p, "data": d, "elements": bad,
                  "formula": [_certified(got[i], slack[i], digits) for i in bad[:20]],
                  "exact": [ref.format_grad(wrt, digits)[i] for i in bad[:20]]}
            where = "the given point" if attempts == 1 else f"random point {checked}"
            msg = (f"refuted: the formula differs from the exact ∂L/∂{wrt} at {len(bad)} of "
                   f"{max(got.size, 1)} elements at {where} (first {bad[0]}: formula "
                   f"{cx['formula'][0]}, exact {cx['exact'][0]})")
            return Certificate("refuted", msg, wrt, checked, digits, cx)
    if checked == 0:
        raise InputError(f"no point away from kinks and singularities found in {attempts} "
                         f"draws (last: {last_err})")
    proved, note = (_prove(form, params, data, graph, wrt, vary, prove_timeout) if prove
                    else (False, "not attempted (prove=False)"))
    if proved:
        msg = f"proved: formula == ∂L/∂{wrt} for all inputs at these sizes (sympy)"
    else:
        msg = f"holds numerically: equal to {digits} digits at {checked} points; no proof ({note})"
    return Certificate("proved" if proved else "holds_numerically", msg, wrt, checked, digits,
                       proof=note)


# --- numeric check ----------------------------------------------------------------------------
def _draw(rng: np.random.Generator, k: int, params: dict, data: dict, vary: set) -> tuple:
    """Attempt 0 is the given point; then alternately sign-keeping perturbations of it and
    fresh normal draws at each tensor's scale (re-drawn by the caller at kinks/singularities)."""
    def new(v: np.ndarray) -> np.ndarray:
        s = float(np.sqrt(np.mean(np.square(v)))) if v.size else 1.0
        s = s if s > 0 else 1.0
        if k % 2:
            return v * (1 + 0.5 * rng.uniform(-1, 1, v.shape)) + 0.05 * s * rng.standard_normal(v.shape)
        return s * rng.standard_normal(v.shape)
    if k == 0:
        return dict(params), dict(data)
    p = {n: new(v.astype(np.float64)) for n, v in params.items()}
    d = {n: new(v.astype(np.float64)) if n in vary else v for n, v in data.items()}
    return p, d


def _certified(v: Any, slack: Any, digits: int) -> str:
    """v with only the digits its change between two precisions (slack) leaves certain."""
    if slack == 0:
        return format_mpf(v, digits)
    if v == 0:
        return "?"
    d = int(mpmath.floor(mpmath.log10(abs(v) / slack))) - 1
    return format_mpf(v, min(digits, d))


def _differ(got: np.ndarray, slack: np.ndarray, exact: np.ndarray, digits: int) -> list:
    """Elements where |formula − exact| > 10^−digits·max(|f|, |g|) + 2·(formula's own error)."""
    bad = []
    with mpmath.workprec(digits_to_bits(digits) + 64):
        tol = mpmath.mpf(10) ** -digits
        for idx in np.ndindex(*got.shape):
            f, g = got[idx], exact[idx]
            if abs(f - g) > tol * max(abs(f), abs(g)) + 2 * slack[idx]:
                bad.append(tuple(int(i) for i in idx))
    return bad


# --- symbolic proof ---------------------------------------------------------------------------
def _prove(form: Formula, params: dict, data: dict, graph: Graph, wrt: str, vary: set,
           timeout: float) -> tuple[bool, str]:
    """Reduce formula − ∂L/∂wrt to 0 per element with sympy, within `timeout` seconds."""
    fixed = {s: exact(v) for k in set(graph.data) - vary
             for s, v in zip(form.syms[k].reshape(-1), data[k].reshape(-1), strict=True)}
    start = time.monotonic()
    try:
        with _deadline(timeout):
            loss, why = _symbolic(graph, "L")
            if loss is None:
                return False, f"the loss {why}"
            elems, why = _formula_symbolic(form, params, data)
            if elems is None:
                return False, f"the formula {why}"
            loss = loss.xreplace(fixed)
            terms = loss.args if loss.is_Add else (loss,)  # differentiate only terms that matter
            free = [t.free_symbols for t in terms]
            for idx in np.ndindex(*form.shape):
                s = form.syms[wrt][idx]
                grad = sp.Add(*[t.diff(s) for t, fs in zip(terms, free, strict=True) if s in fs])
                d = sp.sympify(elems[idx]).xreplace(fixed) - grad
                if not (d == 0 or sp.expand(d) == 0 or sp.simplify(d) == 0):
                    return False, f"sympy did not reduce element {idx}'s difference to 0"
    except TimeoutError:
        return False, f"gave up after {timeout:g} s"
    return True, f"sympy reduced every difference to 0 in {time.monotonic() - start:.2f} s"


def _formula_symbolic(form: Formula, params: dict, data: dict) -> tuple[Any, str]:
    """The formula's per-element sympy expressions valid for all inputs (None and why if none)."""
    if form.fn is None:
        return form.elems, ""
    e, why = _symbolic(form.graph(params, data), "F")
    if e is None:
        return None, why
    return np.array(e.tolist() if hasattr(e, "tolist") else e, dtype=object).reshape(form.shape), ""


def _symbolic(graph: Graph, tag: str) -> tuple[Any, str]:
    """The graph as sympy valid for ALL inputs: cut inputs become free symbols; kinks refuse."""
    size = sum(int(np.prod(n.shape)) for n in graph.nodes if not n.is_leaf and graph.live[n.id])
    if weighted_depth(graph) > MAX_PROOF_DEPTH or size > MAX_PROOF_ELEMENTS:
        return None, (f"is too deep or large to prove (depth {weighted_depth(graph):.0f}, "
                      f"{size} intermediate elements; limits {MAX_PROOF_DEPTH:.0f}, {MAX_PROOF_ELEMENTS})")
    graph = _free_cuts(graph, tag)
    for n in graph.nodes:
        if graph.live[n.id] and not n.is_leaf and getattr(REGISTRY[n.op], "kink", None) is not None:
            return None, f"has a kink ({n.op}{' at ' + n.where if n.where else ''}): no proof for all inputs"
    return to_sympy(graph, data_symbolic=True)[0], ""


def _free_cuts(graph: Graph, tag: str) -> Graph:
    """Each cut input (stop_gradient) -> a new data leaf: symbolic, any value, no gradient."""
    if not graph.cut_edges:
        return graph
    with np.errstate(all="ignore"):
        vals = forward(graph, get_backend("float64"), check_domain=False)
    nodes: list = []
    new_id, values, cuts = {}, {}, {}
    for n in graph.nodes:
        inputs = []
        for pos, i in enumerate(n.inputs):
            if (n.id, pos) in graph.cut_edges:
                src = graph.nodes[i]
                leaf = dataclasses.replace(src, id=len(nodes), op="data", inputs=(),
                                           name=f"_cut{tag}{n.id}_{pos}", attrs=MappingProxyType({}))
                v = np.zeros(src.shape) if vals[i] is None else vals[i]
                values[leaf.id] = np.nan_to_num(np.asarray(v, dtype=np.float64))
                cuts[leaf.name] = leaf.id
                nodes.append(leaf)
                inputs.append(leaf.id)
            else:
                inputs.append(new_id[i])
        new_id[n.id] = len(nodes)
        if n.id in graph.values:
            values[new_id[n.id]] = graph.values[n.id]
        nodes.append(dataclasses.replace(n, id=new_id[n.id], inputs=tuple(inputs)))
    return Graph(tuple(nodes), new_id[graph.output],
                 MappingProxyType({k: new_id[v] for k, v in graph.params.items()}),
                 MappingProxyType({**{k: new_id[v] for k, v in graph.data.items()}, **cuts}),
                 MappingProxyType(values))


@contextlib.contextmanager
def _deadline(seconds: float):
    """Raise TimeoutError after `seconds` (SIGALRM; only in the main thread, when unused)."""
    if not (threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGALRM")
            and signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None)):
        yield  # elsewhere only the size limit bounds the time
        return
    old = signal.signal(signal.SIGALRM, _timeout)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _timeout(*_: Any) -> None:
    raise TimeoutError
