"""Turn a sympy expression into a vectorised function over any number backend.

A tiny dispatch instead of `lambdify`: rational constants go through `backend.const` (exact in
mpmath/arb/intervals), so nothing is ever rounded to a Python float on the way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import sympy as sp

Compiled = Callable[..., Any]  # (backend, *arrays) -> array

_COMPARE = {
    sp.StrictGreaterThan: ">",
    sp.GreaterThan: ">=",
    sp.StrictLessThan: "<",
    sp.LessThan: "<=",
    sp.Equality: "==",
    sp.Unequality: "!=",
}
_FUNCS = {sp.exp: "exp", sp.log: "log", sp.tanh: "tanh", sp.Abs: "abs", sp.sign: "sign"}


def compile_expr(expr: sp.Basic, symbols: Sequence[sp.Symbol]) -> Compiled:
    """Return f(backend, *args) evaluating `expr` with `symbols` bound to `args`."""
    index = {s: i for i, s in enumerate(symbols)}
    return _build(sp.sympify(expr), index)


def _build(e: sp.Basic, index: dict) -> Compiled:  # noqa: C901 - one dispatch table
    if e in index:
        i = index[e]
        return lambda b, *a: a[i]
    if e is sp.true:
        return lambda b, *a: True
    if e.is_Rational:
        return lambda b, *a: b.const(e)
    if e is sp.E:
        return lambda b, *a: b.exp(b.const(1))
    if isinstance(e, sp.Add):
        parts = [_build(t, index) for t in e.args]

        def add(b, *a):
            acc = parts[0](b, *a)
            for p in parts[1:]:
                acc = np.add(acc, p(b, *a))
            return acc

        return add
    if isinstance(e, sp.Mul):
        num = [f for f in e.args if not _is_reciprocal(f)]
        den = [sp.Pow(f.base, -f.exp) for f in e.args if _is_reciprocal(f)]
        fnum = [_build(f, index) for f in num]
        fden = _build(sp.Mul(*den), index) if den else None

        def mul(b, *a):
            acc = fnum[0](b, *a) if fnum else b.const(1)
            for p in fnum[1:]:
                acc = np.multiply(acc, p(b, *a))
            return np.divide(acc, fden(b, *a)) if fden else acc

        return mul
    if isinstance(e, sp.Pow):
        return _build_pow(e, index)
    if isinstance(e, sp.Piecewise):
        return _build_piecewise(e, index)
    if type(e) in _COMPARE:
        op = _COMPARE[type(e)]
        lhs, rhs = _build(e.lhs, index), _build(e.rhs, index)
        return lambda b, *a: b.compare(op, lhs(b, *a), rhs(b, *a))
    if type(e) in _FUNCS:
        name = _FUNCS[type(e)]
        arg = _build(e.args[0], index)
        return lambda b, *a: getattr(b, name)(arg(b, *a))
    raise NotImplementedError(f"cannot compile sympy expression {e!r} ({type(e).__name__})")


def _is_reciprocal(f: sp.Basic) -> bool:
    return isinstance(f, sp.Pow) and f.exp.is_Rational and f.exp < 0


def _build_pow(e: sp.Pow, index: dict) -> Compiled:
    base, ex = _build(e.base, index), e.exp
    if ex.is_Integer and ex > 0:
        n = int(ex)

        def ipow(b, *a):
            x = base(b, *a)
            acc = x
            for _ in range(n - 1):
                acc = np.multiply(acc, x)
            return acc

        return ipow
    if ex.is_Rational and ex < 0:
        inv = _build(sp.Pow(e.base, -ex), index)
        return lambda b, *a: np.divide(b.const(1), inv(b, *a))
    if ex == sp.Rational(1, 2):
        return lambda b, *a: b.sqrt(base(b, *a))
    power = _build(ex, index)
    return lambda b, *a: b.pow(base(b, *a), power(b, *a))


def _build_piecewise(e: sp.Piecewise, index: dict) -> Compiled:
    branches = [(_build(v, index), _build(c, index)) for v, c in e.args]

    def piecewise(b, *a):
        value, cond = branches[-1][0](b, *a), None
        for fv, fc in reversed(branches[:-1]):
            cond = fc(b, *a)
            value = b.where(cond, fv(b, *a), value)
        return value

    return piecewise
