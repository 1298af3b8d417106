"""`reference()`: the exact loss and gradient at the user's point, every reported digit certified.

Default (`mp`): evaluate forward + reverse at p bits and again at p + Δ bits; the digits on
which the two agree are reported, and p is raised until `digits` are certified everywhere.
Rigorous (`iv`, `arb`): one evaluation in interval/ball arithmetic; the enclosure's width
bounds the error, and p is raised the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refgrad.differentiate.reverse import backward
from refgrad.errors import KinkError, PrecisionError
from refgrad.evaluate.backends import digits_to_bits, engine, get_backend
from refgrad.evaluate.forward import forward
from refgrad.evaluate.kinks import Kink, find_kinks
from refgrad.evaluate.precision import (
    LOG10_2,
    agreement_digits,
    ball_digits,
    round_array,
    rounding_is_decided,
)
from refgrad.graph.graph import Graph
from refgrad.trace.tracer import trace

GUARD_BITS = 24
RIGOROUS_GUARD_BITS = 64  # balls widen along the graph: start wide enough to need one pass
MAX_BITS = 1 << 14


@dataclass
class Reference:
    """The exact loss and gradient at one point, with the digits that are certified.

    `digits[name]` holds each entry's certified significant digits (-1 where the entry is an
    exact zero); `certified_digits` is the least over the loss and every nonzero entry.
    """

    value: Any
    grad: dict[str, np.ndarray]
    digits: dict[str, np.ndarray]
    value_digits: int
    certified_digits: int
    exact_zeros: dict[str, np.ndarray]
    kinks: list[Kink]
    prec: int
    backend: str
    graph: Graph = field(repr=False)

    def grad_as(self, dtype: Any) -> dict[str, np.ndarray]:
        """The gradient correctly rounded to `dtype` (np.float32, np.float64, np.float16)."""
        self._check_rounding(dtype)
        return {k: round_array(v, dtype) for k, v in self.grad.items()}

    def value_as(self, dtype: Any) -> Any:
        """The loss correctly rounded to `dtype`."""
        return round_array(np.asarray(self.value, dtype=object), dtype)[()]

    def _check_rounding(self, dtype: Any) -> None:
        """Every rounded entry must be decided by the certified digits. A value whose mantissa
        is far shorter than the working precision (a short dyadic, identical in both runs) was
        computed without any rounding: it is exact, and ties-to-even on it is correct."""
        for k, g in self.grad.items():
            for v, d in zip(g.reshape(-1), self.digits[k].reshape(-1)):
                if v._mpf_[3] <= self.prec - 16:
                    continue
                if d >= 0 and not rounding_is_decided(v, 10.0 ** -(int(d)), dtype):
                    raise PrecisionError(
                        f"grad[{k!r}] entry {v} lies too close to a {np.dtype(dtype).name} rounding "
                        f"boundary for {d} certified digits; ask reference() for more digits"
                    )

    def format_grad(self, name: str, max_digits: int | None = None) -> np.ndarray:
        """Entries of grad[name] as decimal strings with only certified digits."""
        out = np.empty(self.grad[name].shape, dtype=object)
        for i, (v, d) in enumerate(zip(self.grad[name].reshape(-1), self.digits[name].reshape(-1))):
            out.reshape(-1)[i] = format_mpf(v, int(d), max_digits)
        return out

    def summary(self) -> str:
        lines = [
            f"loss = {format_mpf(self.value, self.value_digits, 20)}",
            f"certified digits: {self.certified_digits} (backend {self.backend}, {self.prec} bits)",
        ]
        for k, g in self.grad.items():
            nz = int(self.exact_zeros[k].sum())
            lines.append(f"grad[{k!r}] {g.shape}: {g.size - nz} nonzero, {nz} exact zeros")
        lines += [f"kink: {k}" for k in self.kinks]
        return "\n".join(lines)

    __str__ = summary


def format_mpf(v: Any, digits: int, max_digits: int | None = None) -> str:
    """v with `digits` significant digits ('0' for an exact zero, '?' if none is certified)."""
    if v == 0 and digits < 0:
        return "0"
    if digits <= 0:
        return "?"
    import mpmath

    n = digits if max_digits is None else min(digits, max_digits)
    return mpmath.nstr(v, n, min_fixed=-4, max_fixed=6, strip_zeros=False)


def reference(
    fn: Callable[..., Any] | Graph,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    *,
    digits: int = 30,
    backend: str = "mp",
    on_kink: str = "report",
    max_bits: int = MAX_BITS,
) -> Reference:
    """Exact loss and gradient of `fn(params, data)` at `params`, certified to `digits`.

    `fn` may also be an already traced Graph (then `params`, if given, moves the point).
    on_kink='raise' turns a point exactly on a kink into a KinkError.
    """
    if backend not in ("mp", "mpfr", "iv", "arb"):
        raise ValueError(f"reference backend must be 'mp', 'iv' or 'arb', not {backend!r}")
    if digits < 1:
        raise ValueError(f"digits must be at least 1, got {digits}")
    graph = fn if isinstance(fn, Graph) else trace(fn, params or {}, data)
    point = params if isinstance(fn, Graph) else None
    backend = "mp" if backend == "mpfr" else backend
    guard = GUARD_BITS if backend == "mp" else RIGOROUS_GUARD_BITS
    prec = max(64, digits_to_bits(digits) + guard)
    kinks: list[Kink] | None = None
    while True:
        res = _evaluate(graph, backend, prec, point)
        if kinks is None:
            kinks = res.pop("kinks")
            if kinks and on_kink == "raise":
                raise KinkError("the point sits on a kink: " + "; ".join(map(str, kinks)))
        ref = _certify(graph, res, backend, prec, kinks)
        if ref.certified_digits >= digits:
            return ref
        if prec * 2 > max_bits:
            raise PrecisionError(_worst(ref, digits, max_bits))
        prec *= 2


def _evaluate(graph: Graph, backend: str, prec: int, point: Any) -> dict:
    """Values and gradients at prec (and prec + Δ for mp, to compare)."""
    precs = [prec, prec + max(32, prec // 2)] if backend == "mp" else [prec]
    runs = []
    kinks: list[Kink] = []
    for i, p in enumerate(precs):
        b = get_backend(engine(backend), p)
        vals = forward(graph, b, point)
        if i == 0:
            kinks = find_kinks(graph, b, vals)
        grad = backward(graph, b, vals)
        if b.name == "mpfr":  # hand out mpmath numbers whatever engine computed them
            with b.context():
                grad = {k: b.to_mpf(v) for k, v in grad.items()}
                value = b.to_mpf(vals[graph.output])
        else:
            value = vals[graph.output]
        runs.append((b, value, grad))
    return {"runs": runs, "kinks": kinks}


def _certify(graph: Graph, res: dict, backend: str, prec: int, kinks: list[Kink]) -> Reference:
    """Per-element certified digits; exact zeros are tracked apart from 'no digit certified'."""
    runs = res["runs"]
    cap = int(prec * LOG10_2) - 2
    if backend == "mp":
        (_, v_lo, g_lo), (_, v_hi, g_hi) = runs
        value, grad = v_hi[()], g_hi
        vd, vzero = agreement_digits(v_lo, v_hi, cap)
        certified = {k: agreement_digits(g_lo[k], g_hi[k], cap) for k in grad}
    else:
        b, v, g = runs[0]
        with b.context():
            value = b.to_mpf(v)[()]
            vd, vzero = ball_digits(*b.midrad(v), cap)
            grad = {k: np.asarray(b.to_mpf(x), dtype=object) for k, x in g.items()}
            certified = {k: ball_digits(*b.midrad(x), cap) for k, x in g.items()}
    zeros = {k: z for k, (_, z) in certified.items()}
    digits = {k: np.where(z, -1, d) for k, (d, z) in certified.items()}
    value_digits = cap if vzero[()] else int(vd[()])
    least = min([value_digits] + [int(d[~zeros[k]].min()) for k, d in digits.items()
                                  if (~zeros[k]).any()])
    return Reference(value, grad, digits, value_digits, least, zeros, kinks, prec, backend, graph)


def _worst(ref: Reference, digits: int, max_bits: int) -> str:
    """Name the least certified entry, its value, and what to do."""
    where, value, d = "the loss", ref.value, ref.value_digits
    for k, dd in ref.digits.items():
        masked = np.where(dd == -1, 10**9, dd)
        if masked.size and masked.min() < d:
            i = np.unravel_index(int(np.argmin(masked)), masked.shape)
            idx = tuple(int(j) for j in i)
            where, value, d = f"grad[{k!r}] at {idx}", ref.grad[k][i], int(masked[i])
    return (
        f"could not certify {digits} digits within {max_bits} bits: {where} has only {max(d, 0)} "
        f"certified digit(s) (so far: {format_mpf(value, max(d, 0))}); heavy cancellation at this "
        "point, or a true value of 0 reached through rounding; raise max_bits or try backend='arb'"
    )
