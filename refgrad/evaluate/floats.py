"""numpy float backends: what a correct float16/32/64 implementation computes, and complex128
for the complex-step derivative."""

from __future__ import annotations

from typing import Any

import mpmath
import numpy as np

from refgrad.evaluate.backends import _OPS, Backend, _rational
from refgrad.evaluate.precision import round_to_dtype


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
