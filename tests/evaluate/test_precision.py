"""Correct rounding and digit counting, against exact rational arithmetic (fractions)."""

from fractions import Fraction

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refgrad.evaluate.precision import (
    agreement_digits,
    ball_digits,
    round_to_dtype,
    rounding_is_decided,
)


def _fraction(x):
    sign, man, exp, _ = x._mpf_
    f = Fraction(int(man)) * Fraction(2) ** int(exp)
    return -f if sign else f


def _oracle(f: Fraction, dtype) -> float:
    """Round an exact rational to `dtype` by search among neighbours of a nearby float."""
    with np.errstate(over="ignore"):
        v = dtype(float(f))
    if not np.isfinite(v):
        return v
    with np.errstate(over="ignore"):
        cands = [c for c in (v, np.nextafter(v, dtype(np.inf)), np.nextafter(v, dtype(-np.inf)))
                 if np.isfinite(c)]
    best = min(cands, key=lambda c: (abs(Fraction(float(c)) - f), int(np.frombuffer(
        np.array(c, dtype).tobytes(), np.uint8)[0]) & 1))  # ties: even mantissa
    return best


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 2**200), st.integers(-300, 100), st.booleans())
def test_round_to_dtype_is_correct_for_wide_mantissas(man, exp, neg):
    with mpmath.workprec(256):
        x = mpmath.ldexp(mpmath.mpf(-man if neg else man), exp - 200)
    f = _fraction(x)
    for dt in (np.float16, np.float32, np.float64):
        got = round_to_dtype(x, dt)
        want = _oracle(f, dt)
        if np.isfinite(want) and want != 0:
            assert got == want, (dt, f)


def test_no_double_rounding_through_53_bits():
    with mpmath.workprec(200):
        z = mpmath.mpf(1) + mpmath.mpf(2) ** -24 + mpmath.mpf(2) ** -60  # just above a tie
    assert round_to_dtype(z, np.float32) == np.float32(1 + 2**-23)


def test_a_tie_is_not_decided_by_approximate_digits():
    with mpmath.workprec(200):
        tie = mpmath.mpf(1) + mpmath.mpf(2) ** -53
        near = tie + mpmath.mpf(10) ** -40
    assert not rounding_is_decided(tie, 1e-30, np.float64)
    assert not rounding_is_decided(near, 1e-30, np.float64)
    assert rounding_is_decided(near, 1e-45, np.float64)


def test_digit_counts():
    with mpmath.workprec(200):
        hi = np.array([mpmath.mpf(1) / 3, mpmath.mpf(0), mpmath.mpf(2)], dtype=object)
        lo = np.array([hi[0] * (1 + mpmath.mpf(10) ** -20), mpmath.mpf(0), -hi[2]], dtype=object)
    d, zero = agreement_digits(lo, hi, cap=50)
    assert d.tolist() == [19, 0, 0] and zero.tolist() == [False, True, False]
    mid = np.array([mpmath.mpf(1), mpmath.mpf(0), mpmath.mpf("1e-3")], dtype=object)
    rad = np.array([mpmath.mpf("1e-10"), mpmath.mpf(0), mpmath.mpf("1e-2")], dtype=object)
    d, zero = ball_digits(mid, rad, cap=50)
    assert d.tolist() == [9, 0, 0] and zero.tolist() == [False, True, False]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_overflow_and_subnormals(dtype):
    fi = np.finfo(dtype)
    with mpmath.workprec(200):
        big = mpmath.mpf(float(fi.max)) * 2
        sub = mpmath.mpf(float(fi.smallest_subnormal)) * mpmath.mpf("1.5")
    assert round_to_dtype(big, dtype) == np.inf and round_to_dtype(-big, dtype) == -np.inf
    assert round_to_dtype(sub, dtype) == 2 * fi.smallest_subnormal  # 1.5 ulp: tie to even (2)
