"""Elementwise primitives, each defined once by a sympy expression with exact constants.

Derivatives come from sympy.diff at registration. The `float_*` forms are the numerically
stable formulas a careful float implementation uses; tests prove them equal to the definition.
"""

from __future__ import annotations

import numpy as np
import sympy as sp

from refgrad.primitives.registry import defprim

half = sp.Rational(1, 2)

# --- arithmetic -----------------------------------------------------------------------------
defprim("add", "a b", lambda a, b: a + b)
defprim("sub", "a b", lambda a, b: a - b)
defprim("mul", "a b", lambda a, b: a * b)
defprim("div", "a b", lambda a, b: a / b, domain=[(lambda a, b: sp.Ne(b, 0), "division by zero")])
defprim("neg", "a", lambda a: -a)
defprim("square", "a", lambda a: a**2)
defprim(
    "pow",
    "a b",
    lambda a, b: a**b,
    domain=[(lambda a, b: a > 0, "pow needs a positive base (use square or integer powers)")],
)

# --- transcendental -------------------------------------------------------------------------
defprim("exp", "a", sp.exp)
defprim("log", "a", sp.log, domain=[(lambda a: a > 0, "log needs a > 0")])
defprim(
    "log1p",
    "a",
    lambda a: sp.log(1 + a),
    domain=[(lambda a: a > -1, "log1p needs a > -1")],
    float_forward=np.log1p,
)
defprim(
    "sqrt",
    "a",
    sp.sqrt,
    domain=[(lambda a: a > 0, "sqrt needs a > 0 (its derivative is infinite at 0)")],
)
defprim("tanh", "a", sp.tanh, float_partials=[lambda a, y: 1 - y * y])
defprim(
    "sigmoid",
    "a",
    lambda a: 1 / (1 + sp.exp(-a)),
    float_forward=lambda a: np.where(a >= 0, 1, np.exp(-np.abs(a))) / (1 + np.exp(-np.abs(a))),
    float_partials=[lambda a, y: y * (1 - y)],
)
defprim(
    "softplus",
    "a",
    lambda a: sp.log(1 + sp.exp(a)),
    float_forward=lambda a: np.logaddexp(a.dtype.type(0), a),
    float_partials=[lambda a, y: 1 / (1 + np.exp(-a))],
)

# --- non-smooth: kinks declared, subgradient stated -----------------------------------------
defprim(
    "relu",
    "a",
    lambda a: sp.Piecewise((a, a > 0), (0, True)),
    kink=lambda a: a,
    subgradient="relu'(0) = 0 (as PyTorch)",
)
defprim(
    "abs",
    "a",
    sp.Abs,
    kink=lambda a: a,
    subgradient="abs'(0) = 0 (sign(0), as PyTorch)",
)
defprim(
    "maximum",
    "a b",
    lambda a, b: sp.Piecewise((a, a > b), (half * (a + b), sp.Eq(a, b)), (b, True)),
    kink=lambda a, b: a - b,
    subgradient="at a tie each argument gets 1/2 (as PyTorch's maximum)",
)
defprim(
    "minimum",
    "a b",
    lambda a, b: sp.Piecewise((a, a < b), (half * (a + b), sp.Eq(a, b)), (b, True)),
    kink=lambda a, b: a - b,
    subgradient="at a tie each argument gets 1/2 (as PyTorch's minimum)",
)
