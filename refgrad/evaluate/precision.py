"""Counting correct digits and rounding exactly: the arithmetic behind "every digit is correct".

- agreement digits: two evaluations at different precisions agree to d significant digits;
- ball digits: a rigorous enclosure mid ± rad has at least d correct significant digits
  (both return per-element digits and, separately, which entries are exact zeros);
- round_to_dtype: an mpf correctly rounded (nearest-even, subnormals, overflow) to a float dtype.
"""

from __future__ import annotations

import math
from typing import Any

import mpmath
import numpy as np

LOG10_2 = math.log10(2)


def _digits(num: np.ndarray, den: np.ndarray, ok: np.ndarray, cap: int, margin: int) -> np.ndarray:
    """floor(−log10(num/den)) − margin, clipped to [0, cap]; 0 where not ok. The ratio is
    formed in exact/multiprecision arithmetic first, so no float underflow can overstate."""
    num = np.asarray(num, dtype=object).reshape(ok.shape)
    den = np.asarray(den, dtype=object).reshape(ok.shape)
    out = np.zeros(ok.shape, dtype=np.int64)
    if not ok.any():
        return out
    ratio = np.array([float(n / d) for n, d in zip(num[ok], den[ok])], dtype=np.float64)
    with np.errstate(divide="ignore"):
        d = np.where(ratio > 0, np.floor(-np.log10(ratio)) - margin, cap)
    out[ok] = np.clip(d, 0, cap).astype(np.int64)
    return out


def agreement_digits(lo: np.ndarray, hi: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Per element: significant digits of `lo` confirmed by the more precise `hi` (one digit of
    margin; 0 if none, e.g. a sign disagreement), and whether both are exactly 0."""
    lo, hi = np.asarray(lo, dtype=object), np.asarray(hi, dtype=object)
    zero = np.array([a == 0 and b == 0 for a, b in zip(lo.ravel(), hi.ravel())], bool).reshape(lo.shape)
    nonzero_hi = np.array([b != 0 for b in hi.ravel()], bool).reshape(hi.shape)
    return _digits(np.abs(lo - hi), np.abs(hi), nonzero_hi, cap, 1), zero


def ball_digits(mid: np.ndarray, rad: np.ndarray, cap: int) -> tuple[np.ndarray, np.ndarray]:
    """Per element: certified significant digits of an enclosure mid ± rad (rigorous: the
    relative error is at most rad/(|mid| − rad)), and whether it is exactly 0 (0 ± 0)."""
    mid, rad = np.asarray(mid, dtype=object), np.asarray(rad, dtype=object)
    zero = np.array([m == 0 and r == 0 for m, r in zip(mid.ravel(), rad.ravel())], bool).reshape(mid.shape)
    amid = np.asarray(np.abs(mid), dtype=object).reshape(mid.shape)
    ok = np.array([a > r for a, r in zip(amid.ravel(), rad.ravel())], bool).reshape(mid.shape)
    return _digits(rad, amid - rad, ok, cap, 0), zero


def round_to_dtype(x: Any, dtype: Any) -> Any:
    """x (mpf) correctly rounded to `dtype` (round half to even, subnormals, ±inf on overflow)."""
    dtype = np.dtype(dtype)
    fi = np.finfo(dtype)
    p, emin = int(fi.nmant) + 1, int(fi.minexp)
    if not isinstance(x, mpmath.mpf):  # never mpf(x) on an mpf: it re-rounds to global 53 bits
        with mpmath.workprec(2048):
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
    """True if every value within x·(1 ± rel_err) rounds to the same float of `dtype`.

    x ± d is formed exactly enough to see a rounding boundary: 64 bits beyond x's own
    mantissa and beyond what rel_err resolves (the global 53 bits would hide it).
    """
    if not isinstance(x, mpmath.mpf):
        with mpmath.workprec(2048):
            x = mpmath.mpf(x)
    bits = int(x._mpf_[3]) + 64 + max(0, int(-math.log2(max(float(rel_err), 1e-300))))
    with mpmath.workprec(bits):
        d = abs(x) * mpmath.mpf(rel_err)
        lo, hi = x - d, x + d
    return round_to_dtype(lo, dtype) == round_to_dtype(hi, dtype)
