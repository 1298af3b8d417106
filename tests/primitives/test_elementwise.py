"""Every elementwise primitive: sympy-derived partials against mpmath.diff at 50 digits, and the
stable float forms against the exact definition."""

import mpmath
import numpy as np
import pytest
import sympy as sp

from refgrad.evaluate.backends import get_backend
from refgrad.primitives import REGISTRY, Elementwise
from refgrad.primitives.registry import defprim

ELEMENTWISE = sorted(k for k, p in REGISTRY.items() if isinstance(p, Elementwise))
# points inside every domain and away from kinks and ties
POINTS = [(0.75, 1.25), (1.5, 0.375), (2.25, 3.5), (0.3, 0.9), (5.0, 2.0)]


def _mp_eval(prim, b, args):
    arrs = [np.asarray(b.asarray(np.float64(a)), dtype=object) for a in args]
    return arrs


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("point", POINTS)
def test_partials_match_mpmath_diff(name, point):
    prim = REGISTRY[name]
    args = point[: prim.arity]
    b = get_backend("mp", 200)
    with b.context():
        xs = _mp_eval(prim, b, args)
        out = prim.forward(b, *xs)
        for i in range(prim.arity):
            got = np.asarray(prim.partial(i, b, xs, out), dtype=object)[()]

            def f(t, i=i):
                a = [mpmath.mpf(v) for v in args]
                a[i] = t
                ys = [np.asarray(v, dtype=object) for v in a]
                return np.asarray(prim.forward(b, *ys), dtype=object)[()]

            with mpmath.workdps(60):
                want = mpmath.diff(f, mpmath.mpf(args[i]))
            assert abs(got - want) <= mpmath.mpf(10) ** -50 * max(1, abs(want)), (name, i)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_float_forms_equal_the_definition(name):
    """float64 evaluation (stable forms included) within round-off of the exact value.

    Partials like s·(1−s) lose relative accuracy when s → 1 (as in every float implementation),
    so the bound is relative to max(|exact|, 1) there: a wrong formula is off by O(1).
    """
    prim = REGISTRY[name]
    rng = np.random.default_rng(7)
    args = [np.abs(rng.standard_normal(50)) * 3 + 0.1 for _ in range(prim.arity)]
    if name in ("sigmoid", "softplus", "tanh", "exp", "relu", "abs", "neg", "square"):
        args[0] = rng.uniform(-30, 30, 50)
    f64, mp = get_backend("float64"), get_backend("mp", 200)
    with f64.context():
        fx = [np.asarray(a) for a in args]
        fout = prim.forward(f64, *fx)
        fparts = [prim.partial(i, f64, fx, fout) for i in range(prim.arity)]
    with mp.context():
        mx = [mp.asarray(a) for a in args]
        mout = prim.forward(mp, *mx)
        mparts = [prim.partial(i, mp, mx, mout) for i in range(prim.arity)]
    for got, want in [(fout, mout)] + list(zip(fparts, mparts)):
        got = np.broadcast_to(got, args[0].shape)
        want = np.broadcast_to(np.asarray(want, dtype=object), args[0].shape)
        for g, w in zip(got, want):
            assert abs(mpmath.mpf(float(g)) - w) <= 1e-13 * abs(w) + 1e-15, name


def test_float_constant_is_refused():
    with pytest.raises(ValueError, match="Rational"):
        defprim("bad_half", "a", lambda a: sp.Float(0.1) * a)


def test_partials_come_from_sympy():
    sig = REGISTRY["sigmoid"]
    a = sig.symbols[0]
    assert sp.simplify(sig.partials[0] - sig.expr * (1 - sig.expr)) == 0
    assert sp.simplify(REGISTRY["tanh"].partials[0] - (1 - sp.tanh(a) ** 2)) == 0


@pytest.mark.parametrize(
    "name, args, expected",
    [("relu", (0.0,), [0]), ("abs", (0.0,), [0]), ("maximum", (1.0, 1.0), [0.5, 0.5]),
     ("minimum", (2.0, 2.0), [0.5, 0.5])],
)
def test_declared_subgradient_at_the_kink(name, args, expected):
    prim = REGISTRY[name]
    assert prim.kink is not None and prim.subgradient
    b = get_backend("mp", 100)
    with b.context():
        xs = [b.asarray(np.float64(a)) for a in args]
        out = prim.forward(b, *xs)
        got = [np.asarray(prim.partial(i, b, xs, out), dtype=object)[()] for i in range(prim.arity)]
    assert [float(g) for g in got] == expected
