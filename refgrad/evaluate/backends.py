"""Interchangeable number backends: arrays of mpf (mpmath) or MPFR numbers here; intervals and
arb balls in balls.py; numpy floats in floats.py. `get_backend(name, prec)` picks one.

A backend is an immutable object; its precision applies only inside `with b.context():`,
so the global mpmath/flint precision is never left changed.
"""

from __future__ import annotations

import contextlib
import operator
from fractions import Fraction
from functools import cache
from typing import Any

import mpmath
import numpy as np
from mpmath import libmp

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


def map_objects(f: Any, a: Any) -> np.ndarray:
    """f over the elements of an array, always returning an object array (also for 0-d)."""
    a = np.asarray(a, dtype=object)
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
            return map_objects(self.scalar, a)
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
        from refgrad.evaluate.balls import IV

        return IV(prec)
    if name == "arb":
        from refgrad.evaluate.balls import ARB

        return ARB(prec)
    from refgrad.evaluate.floats import Complex, Float

    if name in ("float64", "float32", "float16", "longdouble"):
        return Float(name)
    if name == "complex128":
        return Complex()
    raise ValueError(
        f"unknown backend {name!r}: use mp, mpfr, iv, arb, float64, float32 or float16"
    )
