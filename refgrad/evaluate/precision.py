"""Counting correct digits and rounding exactly: the arithmetic behind "every digit is correct".

- agreement digits: two evaluations at different precisions agree to d significant digits;
- ball digits: a rigorous enclosure mid ± rad has at least d correct significant digits;
- round_to_dtype: an mpf correctly rounded (nearest-even, subnormals, overflow) to a float dtype.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np

LOG10_2 = math.log10(2)


def _log10(x: Any) -> float:
    """log10 of a positive mpf without overflow (mpf exponents exceed float range)."""
    m, e = mpmath.frexp(x)
    return math.log10(float(m)) + int(e) * LOG10_2


def agreement_digits(lo: Any, hi: Any, cap: int) -> int:
    """Correct significant digits of `lo`, judged by the more precise `hi`; `cap` if equal.

    -1 means "no digit certified" (including a sign disagreement or hi == 0 != lo).
    """
    if lo == hi:
        return cap
    if hi == 0:
        return -1
    diff = abs(lo - hi)
    d = -_log10(diff) + _log10(abs(hi))
    return max(-1, min(cap, int(math.floor(d)) - 1))


def ball_digits(mid: Any, rad: Any, cap: int) -> int:
    """Certified significant digits of an enclosure mid ± rad (rigorous)."""
    if rad == 0:
        return cap
    if abs(mid) <= rad:
        return -1
    d = _log10(abs(mid) - rad) - _log10(rad)
    return max(-1, min(cap, int(math.floor(d))))


def digits_array(f: Any, *arrays: np.ndarray, cap: int) -> np.ndarray:
    """Apply a digits function elementwise over object arrays; an int array of the same shape."""
    out = np.empty(arrays[0].shape, dtype=np.int64)
    flat = out.reshape(-1)
    cols = [a.reshape(-1) for a in arrays]
    for i in range(flat.size):
        flat[i] = f(*(c[i] for c in cols), cap)
    return out


def round_to_dtype(x: Any, dtype: Any) -> Any:
    """x (mpf) correctly rounded to `dtype` (round half to even, subnormals, ±inf on overflow)."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    p, emin = int(fi.nmant) + 1, int(fi.minexp)
    x = mpmath.mpf(x)
    if x == 0:
        return dtype.type(0.0)
    sign, man, exp, bc = x._mpf_
    e = exp + bc - 1  # floor(log2 |x|)
    q = max(e, emin) - (p - 1)  # spacing exponent of the target format around x
    if exp >= q:
        n = man << (exp - q)
    else:
        shift = q - exp
        n, r = divmod(man, 1 << shift)
        half = 1 << (shift - 1)
        if r > half or (r == half and n & 1):
            n += 1
    try:
        v = math.ldexp(n, q)
    except OverflowError:
        v = math.inf
    if v > float(fi.max):
        v = math.inf
    return dtype.type(-v if sign else v)


def round_array(a: np.ndarray, dtype: Any) -> np.ndarray:
    """round_to_dtype over an object array."""
    out = np.empty(a.shape, dtype=dtype)
    out.reshape(-1)[:] = [round_to_dtype(v, dtype) for v in a.reshape(-1)]
    return out


def rounding_is_decided(x: Any, rel_err: Any, dtype: Any) -> bool:
    """True if every value within x·(1 ± rel_err) rounds to the same float of `dtype`."""
    d = abs(x) * rel_err
    return round_to_dtype(x - d, dtype) == round_to_dtype(x + d, dtype)
