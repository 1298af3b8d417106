"""Rigorous backends: mpmath intervals and python-flint arb balls. Every value encloses the exact
one; comparisons the enclosures cannot decide (at or near a kink) raise KinkError."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import mpmath
import numpy as np
from mpmath import libmp

from refgrad.errors import KinkError, RefgradError
from refgrad.evaluate.backends import Multiprecision, _ufunc


class IV(Multiprecision):
    """mpmath interval arithmetic: every value is an interval that contains the exact one.

    iv has no tanh: it is computed as 1 - 2/(exp(2x)+1), an enclosure built from iv's exp.
    Comparisons that intervals cannot decide (the point is at, or within the enclosure of,
    a kink) raise KinkError rather than guess.
    """

    name = "iv"
    rigorous = True
    make = staticmethod(mpmath.iv.mpf)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        old = mpmath.iv.prec
        mpmath.iv.prec = self.prec
        try:
            yield
        finally:
            mpmath.iv.prec = old

    def scalar(self, v):
        return mpmath.iv.mpf(v) if isinstance(v, mpmath.mpf) else self.const(v)

    exp = staticmethod(_ufunc(mpmath.iv.exp))
    log = staticmethod(_ufunc(mpmath.iv.log))
    sqrt = staticmethod(_ufunc(mpmath.iv.sqrt))
    pow = staticmethod(_ufunc(lambda a, b: mpmath.iv.exp(b * mpmath.iv.log(a)), 2))

    def tanh(self, x):
        one = self.const(1)
        return np.subtract(one, np.divide(2 * one, np.add(self.exp(np.multiply(2, x)), one)))

    def sign(self, x):
        return _ufunc(self._sign1)(x)

    def _sign1(self, v):
        if v.a > 0:
            return self.const(1)
        if v.b < 0:
            return self.const(-1)
        if v.a == 0 and v.b == 0:
            return self.const(0)
        raise KinkError(f"interval {v} straddles 0: sign is undecidable at this precision")

    def compare(self, op, x, y):
        return np.asarray(_ufunc(lambda a, b: _decide_iv(op, a, b), 2)(x, y), dtype=bool)

    def max(self, x, axis, keepdims=False):
        lo = np.max(_ufunc(lambda v: v.a)(x), axis=axis, keepdims=keepdims)
        hi = np.max(_ufunc(lambda v: v.b)(x), axis=axis, keepdims=keepdims)
        return np.asarray(_ufunc(lambda a, b: mpmath.iv.mpf([a, b]), 2)(lo, hi), dtype=object)

    def to_mpf(self, x):
        return np.asarray(_ufunc(lambda v: _iv_mid_rad(v)[0])(x), dtype=object)

    def radius(self, x):
        return np.asarray(_ufunc(lambda v: _iv_mid_rad(v)[1])(x), dtype=object)


def _iv_mid_rad(v: Any) -> tuple[Any, Any]:
    """Exact midpoint and half-width of an interval (no rounding to the global precision)."""
    lo, hi = (v._mpi_ if hasattr(v, "_mpi_") else mpmath.iv.mpf(v)._mpi_)
    mid = libmp.mpf_shift(libmp.mpf_add(lo, hi, 0), -1)
    rad = libmp.mpf_shift(libmp.mpf_sub(hi, lo, 0), -1)
    return mpmath.mp.make_mpf(mid), mpmath.mp.make_mpf(rad)


def _decide_iv(op: str, a: Any, b: Any) -> bool:
    d = mpmath.iv.mpf(a) - b
    if d.a > 0:  # a > b certainly
        return op in (">", ">=", "!=")
    if d.b < 0:
        return op in ("<", "<=", "!=")
    if d.a == 0 and d.b == 0:
        return op in (">=", "<=", "==")
    raise KinkError(f"cannot decide {a} {op} {b} with intervals: the point is at or near a kink")


class ARB(Multiprecision):
    """python-flint arb balls (midpoint + radius): rigorous and fast (arb_mat for matmul)."""

    name = "arb"
    rigorous = True

    def __init__(self, prec: int):
        try:
            import flint
        except ImportError:  # pragma: no cover - exercised only without the extra
            raise RefgradError(
                "the 'arb' backend needs python-flint: pip install 'refgrad[fast]'"
            ) from None
        super().__init__(prec)
        self.flint = flint
        self.make = flint.arb
        arb = flint.arb
        self.exp = _ufunc(arb.exp)
        self.log = _ufunc(arb.log)
        self.tanh = _ufunc(arb.tanh)
        self.sqrt = _ufunc(arb.sqrt)
        self.sign = _ufunc(self._sign1)
        self.pow = _ufunc(lambda a, b: a**b, 2)

    @contextlib.contextmanager
    def context(self) -> Iterator[None]:
        ctx = self.flint.ctx
        old = ctx.prec
        ctx.prec = self.prec
        try:
            yield
        finally:
            ctx.prec = old

    def scalar(self, v):
        if isinstance(v, mpmath.mpf):
            sign, man, exp, _ = v._mpf_
            return self.flint.arb(-int(man) if sign else int(man)) * self.flint.arb(2) ** int(exp)
        return self.const(v)

    def _sign1(self, v):
        if v > 0:
            return self.const(1)
        if v < 0:
            return self.const(-1)
        if v.is_zero():
            return self.const(0)
        raise KinkError(f"ball {v} contains 0: sign is undecidable at this precision")

    def compare(self, op, x, y):
        return np.asarray(_ufunc(lambda a, b: _decide_arb(op, a, b), 2)(x, y), dtype=bool)

    def matmul(self, a, b):
        # arb_mat pays a conversion per entry: worth it once the product has enough work
        if a.ndim == 2 and b.ndim == 2 and a.shape[0] * a.shape[1] * b.shape[1] >= 2048:
            m = self.flint.arb_mat(a.tolist()) * self.flint.arb_mat(b.tolist())
            out = np.empty((a.shape[0], b.shape[1]), dtype=object)
            out.reshape(-1)[:] = m.entries()
            return out
        return np.matmul(a, b)

    def max(self, x, axis, keepdims=False):
        arb = self.flint.arb
        return np.asarray(
            _ufunc(lambda u, v: arb.max(u, v) if hasattr(arb, "max") else _arb_max(u, v), 2).reduce(
                x, axis=axis, keepdims=keepdims
            ),
            dtype=object,
        )

    def to_mpf(self, x):
        return np.asarray(_ufunc(lambda v: _arb_mpf(v.mid()))(x), dtype=object)

    def radius(self, x):
        return np.asarray(_ufunc(lambda v: _arb_mpf(v.rad()))(x), dtype=object)

    def midrad(self, x):
        arb = self.flint.arb
        return (np.asarray(_ufunc(lambda v: arb(v.mid()))(x), dtype=object),
                np.asarray(_ufunc(lambda v: arb(v.rad()))(x), dtype=object))


def _arb_mpf(v: Any) -> Any:
    """An exact arb midpoint/radius (a binary float) as mpf."""
    m, e = v.man_exp()
    return mpmath.mp.make_mpf(libmp.from_man_exp(int(m), int(e)))


def _arb_max(u: Any, v: Any) -> Any:
    if u >= v:
        return u
    if v >= u:
        return v
    return (u + v + abs(u - v)) / 2


def _decide_arb(op: str, a: Any, b: Any) -> bool:
    d = a - b
    if d > 0:
        return op in (">", ">=", "!=")
    if d < 0:
        return op in ("<", "<=", "!=")
    if d.is_zero():
        return op in (">=", "<=", "==")
    raise KinkError(f"cannot decide {a} {op} {b} with balls: the point is at or near a kink")
