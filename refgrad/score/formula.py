"""Hand-derived gradient formulas as `certify` takes them: parsed once, evaluated exactly at a point.

A formula is either a refgrad function `formula(params, data)` returning an array shaped like
params[wrt], or sympy over element symbols: a string such as "(X[i,j] - T[i,j])/(8*8)", where
`X[0,1]` is one element of param or float datum X (a 0-d one is just `X`), integer data (labels)
are constants, and free index symbols (i, j) mean "every element": they bind to the axes of
wrt in the order they index wrt in the formula, else alphabetically (or as `indices=` says).
Sum(expr, (k, 0, n-1)), exp, log, sqrt, tanh, sigmoid, softplus, KroneckerDelta, factorial and
pi are known; any other function is refused when the formula is parsed; decimals are exact.
A dict {index: expr}, a sympy Matrix/Array or an object array gives one expression per element.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import mpmath
import numpy as np
import sympy as sp
from sympy.parsing.sympy_parser import parse_expr, rationalize, standard_transformations

from refgrad.errors import DomainError, InputError, ShapeError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph
from refgrad.graph.to_sympy import element_symbols
from refgrad.trace.tracer import trace

_X = sp.Symbol("x")
FUNCTIONS = {"exp": sp.exp, "log": sp.log, "sqrt": sp.sqrt, "tanh": sp.tanh, "Sum": sp.Sum,
             "sigmoid": sp.Lambda(_X, 1 / (1 + sp.exp(-_X))), "KroneckerDelta": sp.KroneckerDelta,
             "softplus": sp.Lambda(_X, sp.log(1 + sp.exp(_X))), "pi": sp.pi}
_GLOBALS = {"Symbol": sp.Symbol, "Integer": sp.Integer, "Float": sp.Float, "Rational": sp.Rational,
            "Function": sp.Function, "factorial": sp.factorial}  # nothing else: Q, E, I stay unknown
SUPPORTED = [*(k for k in FUNCTIONS if k != "pi"), "factorial"]
# the function classes a parsed formula may hold: what SUPPORTED becomes (sqrt is a power,
# sigmoid/softplus expand, Sum is no Function) and Abs, sympy's own form of sqrt(x**2), x real
_ALLOWED = (sp.exp, sp.log, sp.tanh, sp.KroneckerDelta, sp.factorial, sp.Abs)


class Formula:
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

    def graph(self, params: Mapping, data: Mapping) -> Graph:
        """The callable formula traced at (params, data); its output must be shaped like wrt."""
        g = trace(self.fn, params, data, scalar=False)
        if g.nodes[g.output].shape != self.shape:
            raise ShapeError(f"the formula returns shape {g.nodes[g.output].shape}; the "
                             f"gradient has shape {self.shape}")
        return g

    def at(self, p: dict, d: dict, prec: int) -> tuple[np.ndarray, np.ndarray]:
        """The formula at the point (mpf, 2·prec bits) and |its change from prec bits|."""
        runs = []
        g = self.graph(p, d) if self.fn is not None else None
        for bits in (prec, 2 * prec):
            mp = get_backend("mp", bits)
            if g is not None:
                runs.append(np.asarray(forward(g, mp)[g.output], dtype=object))
                continue
            with mp.context():  # floats become mpf exactly at `bits`; mpf values stay as they are
                vals = [x for k in self.syms for x in mp.asarray({**p, **d}[k]).reshape(-1)]
                try:
                    out = [mpmath.mpmathify(x) for x in self.lam(vals)]
                except (ZeroDivisionError, ValueError) as e:
                    raise DomainError(f"the formula is undefined at this point: {e}") from None
            if any(isinstance(x, mpmath.mpc) and x.imag for x in out):
                raise DomainError("the formula is complex at this point")
            runs.append(np.empty(self.shape, dtype=object))
            runs[-1].reshape(-1)[:] = [mpmath.re(x) for x in out]
        with mpmath.workprec(2 * prec):
            slack = np.frompyfunc(lambda a, b: abs(a - b), 2, 1)(runs[0], runs[1])
        return runs[1], np.asarray(slack, dtype=object)


def _parse(text: Any, f: Formula) -> sp.Expr:
    """A string (tensors as IndexedBase, decimals exact, only known functions) or sympy input."""
    if isinstance(text, sp.Basic):
        return _supported(text.xreplace({x: sp.Rational(str(x)) for x in text.atoms(sp.Float)}))
    shapes = {**{k: a.shape for k, a in f.syms.items()}, **{k: v.shape for k, v in f.ints.items()}}
    local: dict[str, Any] = dict(FUNCTIONS)
    local.update({k: sp.IndexedBase(k) if s else sp.Symbol(k, real=True) for k, s in shapes.items()})
    try:
        expr = sp.sympify(parse_expr(str(text), local_dict=local, global_dict=dict(_GLOBALS),
                                     transformations=standard_transformations + (rationalize,)))
    except Exception as e:  # parse_expr raises anything from SyntaxError to TypeError
        raise InputError(f"the formula {str(text)!r} does not parse ({type(e).__name__}: {e}); "
                         f"tensors: {', '.join(f'{k}{list(s)}' for k, s in shapes.items())}") from None
    return _supported(expr)


def _supported(e: sp.Expr) -> sp.Expr:
    """`e` if every function in it is supported; else an InputError naming the others."""
    bad = sorted({str(g.func) for g in e.atoms(sp.Function) if not isinstance(g, _ALLOWED)})
    if bad:
        raise InputError(f"the formula uses unsupported function(s) {', '.join(bad)}; "
                         f"supported: {', '.join(SUPPORTED)}")
    return e


def _concrete(e: sp.Expr, f: Formula) -> sp.Expr:
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


def _elements(formula: Any, f: Formula, wrt: str, indices: Any) -> np.ndarray:
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
