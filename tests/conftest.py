"""Shared fixtures: global precision must never leak out of a test (or out of refgrad)."""

import mpmath
import pytest


@pytest.fixture(autouse=True)
def _precision_is_never_leaked():
    mpmath.mp.dps = 15
    mpmath.iv.prec = 53
    try:
        import flint

        flint.ctx.prec = 53
    except ImportError:  # pragma: no cover
        flint = None
    yield
    assert mpmath.mp.prec == 53, "mpmath global precision leaked"
    assert mpmath.iv.prec == 53, "mpmath.iv precision leaked"
    if flint is not None:
        assert flint.ctx.prec == 53, "python-flint precision leaked"
