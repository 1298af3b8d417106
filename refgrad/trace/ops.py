"""The numpy-like namespace users write losses with (`import refgrad as rg`).

Every function maps onto registry primitives; numpy arrays and Python scalars mix freely with
traced values and become constants (exact: a float is the binary value it holds).
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.errors import ShapeError, TraceError
from refgrad.trace.tensor import Tensor

ArrayLike = Any


def _tracer_of(args: Sequence[Any], op: str):
    tracers = {id(a.tracer): a.tracer for a in args if isinstance(a, Tensor)}
    if not tracers:
        raise TraceError(f"rg.{op} was called on plain values only; it needs a traced value "
                         "(from params or data inside fn)")
    if len(tracers) > 1:
        raise TraceError(f"rg.{op} mixes tensors from different traces")
    return next(iter(tracers.values()))


def _lift(x: Any, tr: Any) -> Tensor:
    if isinstance(x, Tensor):
        return x
    if isinstance(x, (Fraction,)) or (hasattr(x, "is_Rational") and x.is_Rational):
        return tr.const(x)
    arr = np.asarray(x)
    if arr.dtype.kind not in "iubf":
        raise TraceError(f"cannot use a value of dtype {arr.dtype} in a refgrad operation")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise TraceError("a constant inside fn holds NaN or Inf")
    return tr.const(arr)


def _elementwise(op: str, *args: Any) -> Tensor:
    tr = _tracer_of(args, op)
    ts = [_lift(a, tr) for a in args]
    try:
        shape = np.broadcast_shapes(*(t.shape for t in ts))
    except ValueError:
        raise ShapeError(
            f"{op}: shapes do not broadcast: " + ", ".join(t.node.describe() for t in ts)
        ) from None
    ts = [t if t.shape == shape else broadcast_to(t, shape) for t in ts]
    return tr.apply(op, ts, shape)


def _structural(op: str, inputs: Sequence[Tensor], **attrs: Any) -> Tensor:
    from refgrad.primitives import get

    tr = inputs[0].tracer
    try:
        shape = get(op).shape([t.shape for t in inputs], **attrs)
    except ShapeError as e:
        raise ShapeError(f"{e} (operands: {', '.join(t.node.describe() for t in inputs)})") from None
    return tr.apply(op, list(inputs), shape, **attrs)


# --- elementwise ----------------------------------------------------------------------------
def add(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("add", a, b)
def subtract(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("sub", a, b)
def multiply(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("mul", a, b)
def divide(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("div", a, b)
def negative(a: ArrayLike) -> Tensor: return _elementwise("neg", a)
def square(a: ArrayLike) -> Tensor: return _elementwise("square", a)
def exp(a: ArrayLike) -> Tensor: return _elementwise("exp", a)
def log(a: ArrayLike) -> Tensor: return _elementwise("log", a)
def log1p(a: ArrayLike) -> Tensor: return _elementwise("log1p", a)
def sqrt(a: ArrayLike) -> Tensor: return _elementwise("sqrt", a)
def tanh(a: ArrayLike) -> Tensor: return _elementwise("tanh", a)
def sigmoid(a: ArrayLike) -> Tensor: return _elementwise("sigmoid", a)
def softplus(a: ArrayLike) -> Tensor: return _elementwise("softplus", a)
def relu(a: ArrayLike) -> Tensor: return _elementwise("relu", a)
def abs(a: ArrayLike) -> Tensor: return _elementwise("abs", a)  # noqa: A001
def maximum(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("maximum", a, b)
def minimum(a: ArrayLike, b: ArrayLike) -> Tensor: return _elementwise("minimum", a, b)


def power(a: ArrayLike, p: ArrayLike) -> Tensor:
    """a**p; integer and 1/2 exponents become exact products, squares and roots."""
    if isinstance(a, Tensor) and isinstance(p, (int, float, np.integer, np.floating)):
        p = float(p)
        if p == 1:
            return a
        if p == 2:
            return square(a)
        if p == 0.5:
            return sqrt(a)
        if p.is_integer() and 2 < p <= 16:
            return multiply(a, power(a, p - 1))
        if p.is_integer() and p < 0:
            return divide(1, power(a, -p))
    return _elementwise("pow", a, p)


# --- structural -----------------------------------------------------------------------------
def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeError(f"axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % ndim)
    return tuple(sorted(set(out)))


def broadcast_to(a: Tensor, shape: Sequence[int]) -> Tensor:
    return _structural("broadcast_to", [a], shape=tuple(int(s) for s in shape))


def sum(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    a = _lift(a, _tracer_of([a], "sum"))
    return _structural("sum", [a], axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


def mean(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """sum / n with the exact rational 1/n."""
    axes = _axes(axis, a.ndim)
    n = int(np.prod([a.shape[i] for i in axes], dtype=np.int64))
    return multiply(sum(a, axes, keepdims), Fraction(1, n))


def max(a: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Reduction max; ties share the gradient equally."""
    a = _lift(a, _tracer_of([a], "max"))
    return _structural("max", [a], axis=_axes(axis, a.ndim), keepdims=bool(keepdims))


def reshape(a: Tensor, shape: Sequence[int] | int) -> Tensor:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    return _structural("reshape", [a], shape=tuple(int(s) for s in shape))


def transpose(a: Tensor, axes: Sequence[int] | None = None) -> Tensor:
    # (a.ndim or 1), not max(a.ndim, 1): `max` here is rg.max
    if axes is None:
        axes = tuple(reversed(range(a.ndim)))
    else:
        axes = tuple(int(x) % (a.ndim or 1) for x in axes)
    return _structural("transpose", [a], axes=axes)


def matmul(a: ArrayLike, b: ArrayLike) -> Tensor:
    tr = _tracer_of([a, b], "matmul")
    return _structural("matmul", [_lift(a, tr), _lift(b, tr)])


def concatenate(seq: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    tr = _tracer_of(seq, "concatenate")
    ts = [_lift(t, tr) for t in seq]
    return _structural("concatenate", ts, axis=int(axis) % ts[0].ndim)


def stack(seq: Sequence[ArrayLike], axis: int = 0) -> Tensor:
    tr = _tracer_of(seq, "stack")
    ts = [_lift(t, tr) for t in seq]
    return _structural("stack", ts, axis=int(axis) % (ts[0].ndim + 1))


def pad(a: Tensor, pads: Sequence[tuple[int, int]]) -> Tensor:
    """Zero padding: pads[i] = (before, after) for axis i."""
    pads = tuple((int(lo), int(hi)) for lo, hi in pads)
    if len(pads) != a.ndim or any(lo < 0 or hi < 0 for lo, hi in pads):
        raise ShapeError(f"pad widths {pads} do not fit a tensor of shape {a.shape}")
    return _structural("pad", [a], pads=pads)


def stop_gradient(a: Tensor) -> Tensor:
    """Identity whose input edge is cut: no gradient flows back through it."""
    t = a.tracer.apply("stop_gradient", [a], a.shape)
    a.tracer.cut.add((t.node.id, 0))
    return t


def getitem(a: Tensor, index: Any) -> Tensor:
    """Basic and integer-array indexing (labels: logits[np.arange(n), y])."""
    index = index if isinstance(index, tuple) else (index,)
    items: list[Any] = []
    for i in index:
        if isinstance(i, Tensor):
            raise TraceError("indexing with a traced tensor is not supported; use integer numpy arrays")
        if isinstance(i, (list, np.ndarray)):
            arr = np.asarray(i)
            if arr.dtype.kind == "b":
                items.extend(np.nonzero(arr))
                continue
            if arr.dtype.kind not in "iu":
                raise TraceError(f"index array of dtype {arr.dtype}: use integers")
            items.append(arr.astype(np.intp))
        elif isinstance(i, np.integer):
            items.append(int(i))
        else:
            items.append(i)
    n_real = len([i for i in items if i is not None and i is not Ellipsis])
    ell = [k for k, i in enumerate(items) if i is Ellipsis]  # `in` would compare arrays with ==
    if ell:
        k = ell[0]
        items[k:k + 1] = [slice(None)] * (a.ndim - n_real)
    newaxes = [k for k, i in enumerate(items) if i is None]
    core = tuple(i for i in items if i is not None)
    out = _structural("getitem", [a], index=core)
    if newaxes:
        shape = list(out.shape)
        for k in newaxes:  # positions counted in the output when only basic indexing is used
            shape.insert(k, 1)
        out = reshape(out, shape)
    return out


# --- composites: stable forms, exact in every backend ---------------------------------------
def logsumexp(a: Tensor, axis: Any = -1, keepdims: bool = False) -> Tensor:
    """log Σ exp(a) = m + log Σ exp(a − m), m = max(a) with no gradient (it cancels exactly)."""
    m = stop_gradient(max(a, axis, keepdims=True))
    out = log(sum(exp(a - m), axis, keepdims=True)) + m
    if keepdims:
        return out
    axes = _axes(axis, a.ndim)
    return reshape(out, [s for i, s in enumerate(out.shape) if i not in axes])


def log_softmax(a: Tensor, axis: int = -1) -> Tensor:
    """a − logsumexp(a)."""
    return a - logsumexp(a, axis, keepdims=True)


def softmax(a: Tensor, axis: int = -1) -> Tensor:
    """exp(a − m) / Σ exp(a − m)."""
    e = exp(a - stop_gradient(max(a, axis, keepdims=True)))
    return e / sum(e, axis, keepdims=True)
