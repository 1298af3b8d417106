"""Classic wrong local derivatives, one row per mistake, for the wrong_local_derivative variants.

Each row: the primitive, the wrong derivative written in the input `A` and the output `Y`, and
what was done, as a finding says it.
"""

from __future__ import annotations

import sympy as sp

A, Y = sp.symbols("a y", real=True)
MISTAKES: tuple[tuple[str, sp.Expr, str], ...] = (
    ("tanh", 1 - sp.tanh(Y) ** 2, "tanh' taken on the output: 1 − tanh(y)² instead of 1 − y²"),
    ("tanh", 1 - A**2, "tanh' written 1 − a² on the pre-activation a (1 − y² is right)"),
    ("sigmoid", Y * (1 + Y), "sigmoid' written y(1 + y) instead of y(1 − y)"),
    ("sigmoid", A * (1 - A), "sigmoid' written a(1 − a) on the pre-activation a"),
    ("relu", sp.Integer(1), "relu' = 1 everywhere (negative inputs not masked)"),
    ("exp", A, "exp' taken as the input a instead of exp(a)"),
    ("log", -1 / A**2, "log' written −1/a² instead of 1/a"),
    ("softplus", 1 / (1 + sp.exp(-Y)), "softplus' taken as sigmoid(output) instead of "
     "sigmoid(input)"),
)
