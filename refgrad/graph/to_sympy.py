"""A (small) graph as ONE sympy expression of named element symbols, for proofs and cross-checks.

Params become real symbols `W[0,1]` (a 0-d param is just `W`); data become symbols or their
exact binary values; constants stay exact. Elementwise nodes substitute the primitive's own
sympy definition; structural nodes run their forward over numpy object arrays of expressions.

Branches are chosen at the point (the traced one, or `params`): a reduction `max` becomes the
maximising element (the mean of the tied ones, which is the engine's subgradient rule), and with
piecewise="point" relu/abs/maximum/minimum become the branch that holds there (abs(u) -> ±u, at
a tie maximum(a, b) -> (a+b)/2). The expression then equals the loss, with the engine's
derivatives, in a neighbourhood of the point away from kinks. piecewise="keep" leaves sympy
Piecewise/Abs in place (elementwise kinks then stay exact everywhere).
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Mapping
from fractions import Fraction
from typing import Any

import mpmath
import numpy as np
import sympy as sp

from refgrad.evaluate.backends import Backend, get_backend, map_objects
from refgrad.evaluate.forward import forward
from refgrad.graph.graph import Graph
from refgrad.primitives import REGISTRY, Elementwise

_OPS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le,
        "==": operator.eq, "!=": operator.ne}


def exact(v: Any) -> sp.Expr:
    """A number (float, int, Fraction, mpf, MPFR, sympy) as an exact sympy Rational."""
    if isinstance(v, sp.Basic):
        return v
    if isinstance(v, (bool, np.bool_)):
        raise TypeError("boolean values have no place in a loss expression")
    if isinstance(v, (int, np.integer)):
        return sp.Integer(int(v))
    if isinstance(v, mpmath.mpf):
        if not mpmath.isfinite(v):
            raise ValueError(f"non-finite value {v} has no exact rational form")
        sign, man, ex, _ = v._mpf_
        return sp.Integer(-int(man) if sign else int(man)) * sp.Rational(2) ** int(ex)
    if isinstance(v, Fraction):
        return sp.Rational(v.numerator, v.denominator)
    p, q = v.as_integer_ratio()  # float, numpy floats, gmpy2 mpfr/mpq: exact
    return sp.Rational(int(p), int(q))


def element_symbols(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """Object array of real symbols named like `W[0,1]` (just `W` for a 0-d array)."""
    out = np.empty(shape, dtype=object)
    for idx in np.ndindex(*shape):
        label = name if not shape else f"{name}[{','.join(map(str, idx))}]"
        out[idx] = sp.Symbol(label, real=True)
    return out


class SympyBackend(Backend):
    """The few backend operations structural forwards need, over sympy expressions.

    Comparisons and max cannot be decided symbolically: they use the numeric value of each
    element at the point (`num`: expression -> mpf; unknown ones are evaluated by sympy).
    """

    name = "sympy"

    def __init__(self, num: dict, subs: dict):
        self.num = num
        self.subs = subs

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    def const(self, r: Any) -> sp.Expr:
        return exact(r)

    def asarray(self, x: Any) -> np.ndarray:
        return map_objects(exact, x)

    def value(self, e: Any) -> Any:
        """The element's number at the point (mpf)."""
        v = self.num.get(e)
        if v is None:
            f = sp.Float(sp.N(sp.sympify(e).xreplace(self.subs), 60), 60)
            v = self.num[e] = mpmath.mp.make_mpf(f._mpf_)
        return v

    def compare(self, op: str, x: Any, y: Any) -> np.ndarray:
        vx, vy = map_objects(self.value, x), map_objects(self.value, y)
        return np.asarray(np.frompyfunc(_OPS[op], 2, 1)(vx, vy), dtype=bool)

    def max(self, x: np.ndarray, axis: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
        """The maximising element; ties give the mean of the tied elements."""
        v = map_objects(self.value, x)
        mask = v == np.max(v, axis=axis, keepdims=True)  # mpf comparisons are exact
        count = mask.sum(axis=axis, keepdims=True)
        total = np.sum(np.where(mask, x, sp.Integer(0)), axis=axis, keepdims=True)
        out = map_objects(lambda e: e, total) * map_objects(lambda c: sp.Rational(1, int(c)), count)
        return out if keepdims else np.squeeze(out, axis=axis)


def _choose(e: sp.Basic, at: Mapping[sp.Symbol, sp.Expr]) -> sp.Basic:
    """`e` with every Piecewise/Abs/sign replaced by what holds at the numeric point `at`."""
    if isinstance(e, sp.Piecewise):
        for value, cond in e.args:
            c = cond.xreplace(at)
            if c not in (sp.true, sp.false):
                raise ValueError(f"cannot decide {cond} at the point ({c})")
            if c == sp.true:
                return _choose(value, at)
        raise ValueError(f"no branch of {e} holds at the point")
    if isinstance(e, sp.Abs):
        return sp.sign(e.args[0].xreplace(at)) * _choose(e.args[0], at)
    if isinstance(e, sp.sign):
        return sp.sign(e.args[0].xreplace(at))
    if e.args:
        return e.func(*[_choose(a, at) for a in e.args])
    return e


def _elementwise(prim: Elementwise, xs: list, nums: list | None) -> np.ndarray:
    args = np.broadcast_arrays(*[np.asarray(x, dtype=object) for x in xs])
    out = np.empty(args[0].shape, dtype=object)
    if nums is not None and not prim.expr.has(sp.Piecewise, sp.Abs, sp.sign):
        nums = None
    if nums is not None:
        nums = np.broadcast_arrays(*[np.asarray(v, dtype=object) for v in nums])
    syms = prim.symbols
    for idx in np.ndindex(*out.shape):
        expr = prim.expr
        if nums is not None:
            expr = _choose(expr, {s: exact(v[idx]) for s, v in zip(syms, nums, strict=True)})
        out[idx] = expr.xreplace({s: a[idx] for s, a in zip(syms, args, strict=True)})
    return out


def point(graph: Graph, symbols: Mapping[str, np.ndarray],
          params: Mapping[str, np.ndarray] | None = None) -> dict[sp.Symbol, sp.Expr]:
    """Exact substitution {symbol: Rational} for the point (traced values, `params` replacing)."""
    leaves = graph.leaf_values(params)
    named = {**graph.params, **graph.data}
    subs = {}
    for name, syms in symbols.items():
        vals = np.asarray(leaves[named[name]])
        for idx in np.ndindex(*syms.shape):
            subs[syms[idx]] = exact(vals[idx])
    return subs


def to_sympy(graph: Graph, params: Mapping[str, np.ndarray] | None = None, *,
             data_symbolic: bool = False, piecewise: str = "point", freeze_cuts: bool = False,
             prec: int = 256) -> tuple[sp.Expr, dict[str, np.ndarray]]:
    """(expr, symbols): the loss as one sympy expression; symbols maps name -> Symbol array.

    `params` moves the point at which branches are chosen (not the expression's variables).
    freeze_cuts=True replaces each cut input (stop_gradient, Graph.cut) by its exact value at
    the point, so sympy.diff matches the engine's gradient with those edges cut; by default the
    expression is the plain function (identical for logsumexp/softmax, where the cut cancels).
    """
    if piecewise not in ("point", "keep"):
        raise ValueError(f"piecewise must be 'point' or 'keep', got {piecewise!r}")
    b = get_backend("mp", prec)
    vals = [None if v is None else np.asarray(b.to_mpf(v), dtype=object)
            for v in forward(graph, b, params)]  # exact mpf, whatever numbers the backend uses
    symbols: dict[str, np.ndarray] = {
        name: element_symbols(name, graph.nodes[i].shape) for name, i in graph.params.items()
    }
    if data_symbolic:
        for name, i in graph.data.items():
            symbols[name] = element_symbols(name, graph.nodes[i].shape)
    subs = point(graph, symbols, params)
    leaves = graph.leaf_values(params)
    exprs: list[Any] = [None] * len(graph.nodes)
    num: dict = {}
    sb = SympyBackend(num, subs)
    for n in graph.nodes:
        if vals[n.id] is None:
            continue
        if n.is_leaf:
            named = n.op == "param" or (n.op == "data" and data_symbolic)
            exprs[n.id] = symbols[n.name] if named else map_objects(exact, leaves[n.id])
        else:
            xs = [exprs[i] for i in n.inputs]
            if freeze_cuts:
                xs = [map_objects(lambda e: sp.sympify(e).xreplace(subs), x)
                      if (n.id, p) in graph.cut_edges else x for p, x in enumerate(xs)]
            prim = REGISTRY[n.op]
            if isinstance(prim, Elementwise):
                nums = [vals[i] for i in n.inputs] if piecewise == "point" else None
                out = _elementwise(prim, xs, nums)
            else:
                out = np.asarray(prim.forward(sb, xs, n.attrs, 0), dtype=object)
            exprs[n.id] = out
        for e, v in zip(exprs[n.id].reshape(-1).tolist(), vals[n.id].reshape(-1).tolist(),
                        strict=True):
            num.setdefault(e, v)
    return sp.sympify(exprs[graph.output][()]), symbols
