"""Independent oracles for the tests: they use only refgrad's forward pass or plain mpmath."""

from __future__ import annotations

import mpmath
import numpy as np

from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward


def mp_value(graph, params=None, prec=300):
    """The loss at `params` on the mp backend (forward pass only)."""
    return forward(graph, get_backend("mp", prec), params)[graph.output][()]


def central_difference(graph, name, index, prec=400, h_bits=100):
    """d loss / d params[name][index] by a central difference in mpmath at very high precision.

    h = 2^-h_bits: truncation ~ h²·f'''/6 ≈ 1e-61·f''', round-off ~ 2^-prec/h ≈ 1e-90.
    """
    base = {k: np.array(graph.values[i], dtype=object) for k, i in graph.params.items()}
    with mpmath.workprec(prec):
        h = mpmath.ldexp(1, -h_bits)
        up = {k: v.copy() for k, v in base.items()}
        dn = {k: v.copy() for k, v in base.items()}
        up[name][index] = mpmath.mpf(base[name][index]) + h
        dn[name][index] = mpmath.mpf(base[name][index]) - h
        return (mp_value(graph, up, prec) - mp_value(graph, dn, prec)) / (2 * h)


def rel_close(a, b, digits):
    """|a - b| <= 10^-digits · max(|b|, tiny)."""
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    return abs(a - b) <= mpmath.mpf(10) ** (-digits) * max(abs(b), mpmath.mpf(10) ** -200)
