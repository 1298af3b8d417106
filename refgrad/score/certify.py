"""`certify()`: is a hand-derived gradient formula the exact derivative of the loss?

Verdicts: `proved` (sympy reduces formula − ∂L/∂wrt to 0 for every element, for all params and
varied data at the given sizes), `holds_numerically` (equal to `digits` digits at K random
points, no proof), `refuted` (a concrete point, both values, and the elements that differ).
Points are checked first (the given one, then random ones, re-drawn at kinks and outside the
domain); then the proof: stop_gradient inputs (softmax's max) become free symbols, so it holds
whichever value they take; graphs with kinks, or too deep or large, are not proved.

A formula is either a refgrad function `formula(params, data)` returning an array shaped like
params[wrt], or sympy over element symbols: a string such as "(X[i,j] - T[i,j])/(8*8)", where
`X[0,1]` is one element of param or float datum X (a 0-d one is just `X`), integer data (labels)
are constants, and free index symbols (i, j) mean "every element": they bind to the axes of
wrt in the order they index wrt in the formula, else alphabetically (or as `indices=` says).
Sum(expr, (k, 0, n-1)), exp, log, sqrt, tanh, sigmoid, softplus, KroneckerDelta, pi are known;
decimals are exact. A dict {index: expr}, a sympy Matrix/Array or an object array gives one
expression per element.
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
from sympy.parsing.sympy_parser import parse_expr, rationalize, standard_transformations

from refgrad.errors import DomainError, InputError, KinkError, PrecisionError, ShapeError
from refgrad.evaluate.backends import digits_to_bits, get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph
from refgrad.graph.to_sympy import element_symbols, exact, to_sympy
from refgrad.primitives import REGISTRY
from refgrad.reference import reference
from refgrad.score.baseline import weighted_depth
from refgrad.trace.tensor import Tensor
from refgrad.trace.tracer import Tracer, _Named, check_array, trace

# beyond these sizes sympy's expressions explode (an LSTM over 3 steps has depth 47): numeric only
MAX_PROOF_DEPTH, MAX_PROOF_ELEMENTS = 40.0, 20000
_X = sp.Symbol("x")
FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "Sum": sp.Sum,
             "sigmoid": sp.Lambda(_X, 1 / (1 + sp.exp(-_X))), "KroneckerDelta": sp.KroneckerDelta,
             "softplus": sp.Lambda(_X, sp.log(1 + sp.exp(_X))), "pi": sp.pi}
_GLOBALS = {"Symbol": sp.Symbol, "Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
            "Function": sp.Function, "factorial": sp.factorial}  # nothing else: Q, E, I stay unknown


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
    form = _Formula(formula, graph, {k: v for k, v in data.items() if k not in graph.data},
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
                  "formula": [mpmath.nstr(got[i], digits) for i in bad[:20]],
                  "exact": [mpmath.nstr(ref.grad[wrt][i], digits) for i in bad[:20]]}
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


# --- formulas ---------------------------------------------------------------------------------
class _Formula:
    """The formula in one of its forms, evaluated exactly at a point or turned into sympy."""

    def __init__(self, formula: Any, graph: Graph, ints: dict, wrt: str, indices: Any):
        self.fn = formula if callable(formula) and not isinstance(formula, sp.Basic) else None
        shapes = {k: graph.nodes[i].shape for k, i in {**graph.params, **graph.data}.items()}
        self.shape = shapes[wrt]
        self.syms = {k: element_symbols(k, s) for k, s in shapes.items()}
        self.ints = ints
        self.known = {s.name for a in self.syms.values() for s in a.reshape(-1)}
        if self.fn is None:
            self.elems = _elements(formula, self, wrt, indices)
            args = {s: sp.Symbol(f"a{n}") for n, s in enumerate(
                s for a in self.syms.values() for s in a.reshape(-1))}
            self.lam = sp.lambdify([list(args.values())], [e.xreplace(args) for e in
                                   self.elems.reshape(-1)], "mpmath", docstring_limit=0)

    def at(self, p: dict, d: dict, prec: int) -> tuple[np.ndarray, np.ndarray]:
        """The formula at the point (mpf, 2·prec bits) and |its change from prec bits|."""
        runs = []
        if self.fn is not None:
            g = trace_array(self.fn, p, d)
            if g.nodes[g.output].shape != self.shape:
                raise ShapeError(f"the formula returns shape {g.nodes[g.output].shape}; the "
                                 f"gradient has shape {self.shape}")
        vals = [x for k in self.syms for x in {**p, **d}[k].reshape(-1).tolist()]
        for bits in (prec, 2 * prec):
            if self.fn is not None:
                runs.append(np.asarray(forward(g, get_backend("mp", bits))[g.output], dtype=object))
                continue
            with mpmath.workprec(bits):
                try:
                    out = [mpmath.mpmathify(x) for x in self.lam(list(map(mpmath.mpf, vals)))]
                except (ZeroDivisionError, ValueError) as e:
                    raise DomainError(f"the formula is undefined at this point: {e}") from None
            if any(isinstance(x, mpmath.mpc) and x.imag for x in out):
                raise DomainError("the formula is complex at this point")
            runs.append(np.empty(self.shape, dtype=object))
            runs[-1].reshape(-1)[:] = [mpmath.re(x) for x in out]
        with mpmath.workprec(2 * prec):
            slack = np.frompyfunc(lambda a, b: abs(a - b), 2, 1)(runs[0], runs[1])
        return runs[1], np.asarray(slack, dtype=object)

    def symbolic(self, params: dict, data: dict) -> tuple[Any, str]:
        """Per-element sympy expressions valid for all inputs (None and why if there are none)."""
        if self.fn is None:
            return self.elems, ""
        e, why = _symbolic(trace_array(self.fn, params, data), "F")
        if e is None:
            return None, why
        return np.array(e.tolist() if hasattr(e, "tolist") else e, dtype=object).reshape(self.shape), ""


def _parse(text: Any, f: _Formula) -> sp.Expr:
    """A string (tensors as IndexedBase, decimals exact, only known functions) or sympy input."""
    if isinstance(text, sp.Basic):
        return text.xreplace({x: sp.Rational(str(x)) for x in text.atoms(sp.Float)})
    shapes = {**{k: a.shape for k, a in f.syms.items()}, **{k: v.shape for k, v in f.ints.items()}}
    local: dict[str, Any] = dict(FUNCTIONS)
    local.update({k: sp.IndexedBase(k) if s else sp.Symbol(k, real=True) for k, s in shapes.items()})
    try:
        return sp.sympify(parse_expr(str(text), local_dict=local, global_dict=dict(_GLOBALS),
                                     transformations=standard_transformations + (rationalize,)))
    except Exception as e:  # parse_expr raises anything from SyntaxError to TypeError
        raise InputError(f"the formula {str(text)!r} does not parse ({type(e).__name__}: {e}); "
                         f"tensors: {', '.join(f'{k}{list(s)}' for k, s in shapes.items())}") from None


def _concrete(e: sp.Expr, f: _Formula) -> sp.Expr:
    """Indexed elements -> element symbols `X[0,1]` (integer data -> their values)."""
    e = e.doit() if e.has(sp.Sum) else e
    subs = {}
    for ind in e.atoms(sp.Indexed):
        base, idx = str(ind.base), ind.indices
        src = f.ints.get(base, f.syms.get(base))
        shape = None if src is None else src.shape
        if shape is None or len(idx) != len(shape) or not all(
                i.is_Integer and 0 <= int(i) < n for i, n in zip(idx, shape, strict=True)):
            raise InputError(f"the formula's {ind} is not an element of a tensor (shape {shape})")
        v = src[tuple(int(i) for i in idx)]
        subs[ind] = sp.Integer(int(v)) if base in f.ints else v
    e = e.xreplace(subs)
    unknown = sorted(s.name for s in e.free_symbols if s.name not in f.known)
    if unknown:
        raise InputError(f"the formula uses unknown symbol(s) {unknown}; tensors: {sorted(f.syms)}")
    return e.xreplace({s: sp.Symbol(s.name, real=True) for s in e.free_symbols})


def _elements(formula: Any, f: _Formula, wrt: str, indices: Any) -> np.ndarray:
    """One exact sympy expression per element of wrt, over element symbols."""
    out = np.empty(f.shape, dtype=object)
    if isinstance(formula, Mapping):
        for idx in np.ndindex(*f.shape):
            key = idx if idx in formula else (idx[0] if len(idx) == 1 else idx)
            if key not in formula:
                raise InputError(f"the formula dict has no entry for element {idx} of {wrt}")
            out[idx] = _concrete(_parse(formula[key], f), f)
        return out
    if isinstance(formula, (sp.MatrixBase, sp.NDimArray, np.ndarray, list)):
        arr = np.array(sp.Array(formula).tolist() if isinstance(formula, sp.Basic) else formula,
                       dtype=object)
        if arr.size != out.size:
            raise ShapeError(f"the formula array has shape {arr.shape}; ∂L/∂{wrt} has {f.shape}")
        out.reshape(-1)[:] = [_concrete(_parse(e, f), f) for e in arr.reshape(-1)]
        return out
    expr = _parse(formula, f)
    in_index = {s for i in expr.atoms(sp.Indexed) for j in i.indices for s in j.free_symbols}
    free = sorted(in_index & expr.free_symbols, key=lambda s: s.name)  # not Sum-bound ones
    own = [i.indices for i in expr.atoms(sp.Indexed) if str(i.base) == wrt]
    fit = [o for o in own if len(set(o)) == len(o) == len(free) and set(o) == set(free)]
    order = ([sp.Symbol(n) for n in indices] if indices is not None
             else list(fit[0]) if fit else free)
    if free and len(order) != len(f.shape):
        raise InputError(f"the formula has index symbols {[s.name for s in free]} but {wrt} has "
                         f"{len(f.shape)} axes: index {wrt} with them, pass indices=, or sum "
                         "the others with Sum(..., (k, 0, n-1))")
    for idx in np.ndindex(*f.shape):
        out[idx] = _concrete(expr.xreplace(dict(zip(order, map(sp.Integer, idx), strict=True))), f)
    return out


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


def trace_array(formula: Callable[..., Any], params: Mapping, data: Mapping | None) -> Graph:
    """Trace `formula(params, data)` like `trace`, but its output may be any array."""
    tr = Tracer()
    p = {str(k): tr.leaf("param", str(k), check_array("param", str(k), v)) for k, v in params.items()}
    d = {str(k): (v if np.asarray(v).dtype.kind in "iub"
                  else tr.leaf("data", str(k), check_array("data", str(k), v)))
         for k, v in (data or {}).items()}
    out = formula(_Named("params", p), _Named("data", d))
    if not isinstance(out, Tensor) or out.tracer is not tr:
        if isinstance(out, Tensor) or np.asarray(out).dtype.kind not in "iuf":
            raise InputError("the formula must return an array computed with refgrad ops")
        out = tr.const(np.asarray(out, dtype=np.float64))
    return Graph(tuple(tr.nodes), out.node.id, MappingProxyType(tr.params),
                 MappingProxyType(tr.data), MappingProxyType(tr.values), frozenset(tr.cut))


# --- symbolic proof ---------------------------------------------------------------------------
def _prove(form: _Formula, params: dict, data: dict, graph: Graph, wrt: str, vary: set,
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
            elems, why = form.symbolic(params, data)
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
