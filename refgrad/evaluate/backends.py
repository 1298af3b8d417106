"""Interchangeable number backends: arrays of mpf, mpmath intervals, arb balls, or numpy floats.

A backend is an immutable object; its precision applies only inside `with b.context():`,
so the global mpmath/flint precision is never left changed.
"""

from __future__ import annotations

import contextlib
import operator
from collections.abc import Iterator
from fractions import Fraction
from functools import cache
from typing import Any

import mpmath
import numpy as np
from mpmath import libmp

from refgrad.errors import KinkError, RefgradError
from refgrad.evaluate.precision import round_to_dtype

_OPS = {
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
    "==": operator.eq,
    "!=": operator.ne,
}
LOG2_10 = 3.321928094887362


def digits_to_bits(digits: float) -> int:
    return int(np.ceil(digits * LOG2_10))


def _rational(r: Any) -> Fraction:
    """An exact rational from an int, float, Fraction or sympy Rational."""
    if hasattr(r, "p") and hasattr(r, "q"):
        return Fraction(int(r.p), int(r.q))
    return Fraction(r)


class Backend:
    """Common interface; object-array backends share the elementwise machinery below."""

    name = "abstract"
    is_float = False
    float_forms = False
    rigorous = False
    dtype: Any = object
    prec = 0

    def context(self) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()

    # -- arrays ------------------------------------------------------------------------------
    def asarray(self, x: Any) -> np.ndarray:
        """Exact conversion of a float/int array (or a scalar) to this backend."""
        raise NotImplementedError

    def const(self, r: Any) -> Any:
        raise NotImplementedError

    def zeros(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.const(0), dtype=object)

    def matmul(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.matmul(a, b)

    def where(self, c: Any, x: Any, y: Any) -> np.ndarray:
        return np.where(c, x, y)

    def compare(self, op: str, x: Any, y: Any) -> np.ndarray:
        return np.asarray(_OPS[op](x, y), dtype=bool)

    def max(self, x: np.ndarray, axis: tuple[int, ...], keepdims: bool = False) -> np.ndarray:
        return np.max(x, axis=axis, keepdims=keepdims)

    def to_mpf(self, x: Any) -> Any:
        """Midpoint as mpf (exact for mp; the centre of an interval or ball)."""
        return x

    def radius(self, x: Any) -> Any:
        """A rigorous error bound for rigorous backends; None otherwise."""
        return None

    def midrad(self, x: Any) -> tuple[Any, Any]:
        """Exact centre and radius of each enclosure, in whatever exact numbers are cheapest
        to compare and divide (the digit count needs only ratios of them)."""
        return self.to_mpf(x), self.radius(x)

    def __repr__(self) -> str:
        return f"<backend {self.name}{'' if self.is_float else f' {self.prec} bits'}>"


def _ufunc(f: Any, nin: int = 1) -> Any:
    return np.frompyfunc(f, nin, 1)


def _objects(f: Any, a: np.ndarray) -> np.ndarray:
    """f over an object array, always returning an object array (also for 0-d input)."""
    out = np.empty(a.shape, dtype=object)
    out.reshape(-1)[:] = [f(v) for v in a.reshape(-1).tolist()]
    return out


class Multiprecision(Backend):
    """Backends whose numbers are Python objects at `prec` bits; a subclass says how a float
    or an int becomes one of its numbers (`make`, exact) and how an mpf does (`scalar`)."""

    def __init__(self, prec: int):
        if prec < 53:
            raise ValueError(f"{self.name} backend needs at least 53 bits so float inputs stay exact")
        self.prec = prec
        self._consts: dict = {}

    def make(self, v: float | int) -> Any:
        raise NotImplementedError

    def scalar(self, v: Any) -> Any:
        """An exact number (an mpf, float, int or rational) on this backend."""
        return self.const(v)

    def asarray(self, x):
        a = np.asarray(x)
        if a.dtype == object:
            return _objects(self.scalar, a)
        a = a.astype(np.float64) if a.dtype.kind == "f" else a
        out = np.empty(a.shape, dtype=object)
        out.reshape(-1)[:] = [self.make(v) for v in a.reshape(-1).tolist()]
        return out

    def const(self, r):
        """A rational constant, rounded once at this precision (cached)."""
        c = self._consts.get(r)
        if c is None:
            q = _rational(r)
            c = self._consts[r] = self.make(q.numerator) / q.denominator
        return c

    @staticmethod
    def abs(x):
        return np.abs(x)


class MP(Multiprecision):
    """mpmath mpf numbers at `prec` bits (round to nearest in every operation)."""

    name = "mp"
    make = staticmethod(mpmath.mpf)

    def context(self):
        return mpmath.workprec(self.prec)

    def scalar(self, v):
        return v if isinstance(v, mpmath.mpf) else self.const(v)

    exp = staticmethod(_ufunc(mpmath.exp))
    log = staticmethod(_ufunc(mpmath.log))
    tanh = staticmethod(_ufunc(mpmath.tanh))
    sqrt = staticmethod(_ufunc(mpmath.sqrt))
    sign = staticmethod(_ufunc(mpmath.sign))
    pow = staticmethod(_ufunc(mpmath.power, 2))


class MPFR(Multiprecision):
    """Multiprecision on gmpy2's MPFR numbers (with the `fast` extra): every operation is
    correctly rounded at `prec` bits, and about 10x faster than mpmath's Python-level mpf.
    `to_mpf` hands results out as mpmath mpf, converted exactly."""

    name = "mpfr"

    def __init__(self, prec: int):
        import gmpy2

        super().__init__(prec)
        self.gmpy2 = gmpy2
        self.make = gmpy2.mpfr
        self.exp = _ufunc(gmpy2.exp)
        self.log = _ufunc(gmpy2.log)
        self.tanh = _ufunc(gmpy2.tanh)
        self.sqrt = _ufunc(gmpy2.sqrt)
        self.pow = _ufunc(lambda a, b: a**b, 2)
        self.sign = _ufunc(lambda v: self.const((v > 0) - (v < 0)))

    def context(self):
        g = self.gmpy2
        return g.context(g.get_context(), precision=self.prec, emax=g.get_emax_max(),
                         emin=g.get_emin_min())

    def scalar(self, v):
        if isinstance(v, mpmath.mpf):
            sign, man, exp, _ = v._mpf_
            return self.gmpy2.mul_2exp(self.gmpy2.mpfr(-int(man) if sign else int(man)), int(exp))
        return self.const(v)

    def to_mpf(self, x):
        return np.asarray(_ufunc(_mpfr_to_mpf)(x), dtype=object)


def _mpfr_to_mpf(v: Any) -> Any:
    """An MPFR number as mpf, exactly."""
    if not v:
        return mpmath.mpf(0)
    man, exp = v.as_mantissa_exp()
    return mpmath.mp.make_mpf(libmp.from_man_exp(int(man), int(exp)))


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


def _to_float(v: Any) -> float:
    """An exact number as the nearest float64."""
    return float(round_to_dtype(v, np.float64)) if isinstance(v, mpmath.mpf) else float(_rational(v))


class Float(Backend):
    """numpy in a given float dtype: what a correct float implementation computes."""

    is_float = True
    float_forms = True  # use the primitives' numerically stable numpy forms

    def __init__(self, dtype: Any):
        self.dtype = np.dtype(dtype)
        if self.dtype.kind != "f":
            raise ValueError(f"float backend needs a float dtype, got {self.dtype}")
        self.name = self.dtype.name
        self.prec = int(np.finfo(self.dtype).nmant) + 1

    def context(self):
        return np.errstate(all="ignore")

    def asarray(self, x):
        a = np.asarray(x)
        if a.dtype == object:
            a = np.vectorize(_to_float, otypes=[np.float64])(a)
        return a.astype(self.dtype)

    def const(self, r):
        return self.dtype.type(float(_rational(r)))

    def zeros(self, shape):
        return np.zeros(shape, dtype=self.dtype)

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    tanh = staticmethod(np.tanh)
    sqrt = staticmethod(np.sqrt)
    abs = staticmethod(np.abs)
    sign = staticmethod(np.sign)
    pow = staticmethod(np.power)


class Complex(Float):
    """complex128 for the complex-step derivative: only analytic operations are allowed, so
    the sympy definitions are used (not the stable float forms), comparisons look at real
    parts, and abs(z) is continued analytically as z·sign(Re z)."""

    float_forms = False

    def __init__(self) -> None:
        self.dtype = np.dtype(np.complex128)
        self.name = "complex128"
        self.prec = 53

    def asarray(self, x):
        return np.asarray(x).astype(self.dtype)

    def const(self, r):
        return self.dtype.type(float(_rational(r)))

    def compare(self, op, x, y):
        return np.asarray(_OPS[op](np.real(x), np.real(y)), dtype=bool)

    def abs(self, x):
        return x * np.sign(np.real(x))

    def sign(self, x):
        return np.sign(np.real(x)).astype(self.dtype)

    def max(self, x, axis, keepdims=False):
        """The element with the largest real part (the branch the real function takes)."""
        k = len(axis)
        moved = np.moveaxis(x, axis, tuple(range(x.ndim - k, x.ndim)))
        flat = moved.reshape(moved.shape[: x.ndim - k] + (-1,))
        idx = np.argmax(np.real(flat), axis=-1)
        out = np.take_along_axis(flat, idx[..., None], axis=-1)[..., 0]
        return np.expand_dims(out, axis) if keepdims else out


def engine(backend: str) -> str:
    """The backend that computes a reference: 'mp' runs on MPFR (gmpy2) when the `fast` extra
    is installed — the same round-to-nearest arithmetic, 10x faster — else on mpmath."""
    if backend == "mp":
        try:
            import gmpy2  # noqa: F401
        except ImportError:
            return "mp"
        return "mpfr"
    return backend


@cache
def get_backend(name: str, prec: int = 0) -> Backend:
    """Backend by name: 'mp', 'iv', 'arb' (with prec in bits) or a float dtype name.

    'mp' holds mpmath mpf numbers; 'mpfr' holds gmpy2 MPFR numbers (the `fast` extra): the
    same round-to-nearest arithmetic, about 10x faster, and an independent implementation.
    """
    if name == "mp":
        return MP(prec)
    if name == "mpfr":
        return MPFR(prec)
    if name == "iv":
        return IV(prec)
    if name == "arb":
        return ARB(prec)
    if name in ("float64", "float32", "float16", "longdouble"):
        return Float(name)
    if name == "complex128":
        return Complex()
    raise ValueError(
        f"unknown backend {name!r}: use mp, mpfr, iv, arb, float64, float32 or float16"
    )
