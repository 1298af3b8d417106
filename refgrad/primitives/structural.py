"""Structural primitives: shape rules and exact VJPs over arrays of any backend.

Each forward accepts `nb` leading batch axes (0 or 1) on its inputs so Taylor mode can push
many directions through at once; shapes and VJPs see the unbatched arrays only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refgrad.errors import ShapeError
from refgrad.primitives.registry import defstructural


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum g down to `shape` (the adjoint of numpy broadcasting)."""
    dtype = g.dtype
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.asarray(g, dtype=dtype).reshape(shape)


def _arr(x: Any, like: np.ndarray) -> np.ndarray:
    return x if isinstance(x, np.ndarray) else np.asarray(x, dtype=like.dtype)


# --- broadcast_to ---------------------------------------------------------------------------
def _bc_shape(s, shape):
    try:
        if np.broadcast_shapes(s[0], shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ShapeError(f"cannot broadcast shape {s[0]} to {tuple(shape)}") from None
    return tuple(shape)


def _bc_fwd(b, xs, a, nb):
    x = xs[0]
    base = x.shape[nb:]
    x = x.reshape(x.shape[:nb] + (1,) * (len(a["shape"]) - len(base)) + base)
    return np.broadcast_to(x, x.shape[:nb] + tuple(a["shape"]))


defstructural(
    "broadcast_to",
    shape=_bc_shape,
    forward=_bc_fwd,
    vjp=lambda b, g, xs, out, a: (unbroadcast(g, xs[0].shape),),
)


# --- reshape / transpose --------------------------------------------------------------------
def _reshape_shape(s, shape):
    try:
        return np.empty(s[0], dtype=bool).reshape(shape).shape
    except ValueError:
        raise ShapeError(f"cannot reshape {s[0]} into {shape}") from None


defstructural(
    "reshape",
    shape=_reshape_shape,
    forward=lambda b, xs, a, nb: xs[0].reshape(xs[0].shape[:nb] + tuple(a["shape"])),
    vjp=lambda b, g, xs, out, a: (g.reshape(xs[0].shape),),
)


def _transpose_shape(s, axes):
    if sorted(axes) != list(range(len(s[0]))):
        raise ShapeError(f"transpose axes {axes} do not fit a tensor of shape {s[0]}")
    return tuple(s[0][i] for i in axes)


defstructural(
    "transpose",
    shape=_transpose_shape,
    forward=lambda b, xs, a, nb: np.transpose(
        xs[0], tuple(range(nb)) + tuple(i + nb for i in a["axes"])
    ),
    vjp=lambda b, g, xs, out, a: (np.transpose(g, tuple(np.argsort(a["axes"]))),),
)


# --- indexing and padding -------------------------------------------------------------------
def _getitem_shape(s, index):
    try:
        return np.empty(s[0], dtype=bool)[index].shape
    except IndexError as e:
        raise ShapeError(f"index {index!r} does not fit a tensor of shape {s[0]}: {e}") from None


def _advanced_split(index: tuple) -> bool:
    """True if numpy would move advanced-index dims to the front (they are not adjacent)."""
    if not any(isinstance(i, np.ndarray) for i in index):
        return False
    pos = [k for k, i in enumerate(index) if isinstance(i, (np.ndarray, int, np.integer))]
    return pos[-1] - pos[0] + 1 != len(pos)


def _getitem_fwd(b, xs, a, nb):
    x, index = xs[0], a["index"]
    if nb and _advanced_split(index):
        return np.stack([xi[index] for xi in x])
    return _arr(x[(slice(None),) * nb + index], x)


def _getitem_vjp(b, g, xs, out, a):
    z = b.zeros(xs[0].shape)
    np.add.at(z, a["index"], g)
    return (z,)


defstructural("getitem", shape=_getitem_shape, forward=_getitem_fwd, vjp=_getitem_vjp)


def _pad_fwd(b, xs, a, nb):
    x = xs[0]
    pads = a["pads"]
    base = x.shape[nb:]
    z = b.zeros(x.shape[:nb] + tuple(n + lo + hi for n, (lo, hi) in zip(base, pads)))
    z[(slice(None),) * nb + tuple(slice(lo, lo + n) for n, (lo, _) in zip(base, pads))] = x
    return z


defstructural(
    "pad",
    shape=lambda s, pads: tuple(n + lo + hi for n, (lo, hi) in zip(s[0], pads)),
    forward=_pad_fwd,
    vjp=lambda b, g, xs, out, a: (
        g[tuple(slice(lo, lo + n) for n, (lo, _) in zip(xs[0].shape, a["pads"]))],
    ),
)


# --- concatenate / stack --------------------------------------------------------------------
def _concat_shape(s, axis):
    try:
        return np.concatenate([np.empty(t, dtype=bool) for t in s], axis=axis).shape
    except ValueError as e:
        raise ShapeError(f"cannot concatenate shapes {list(s)} along axis {axis}: {e}") from None


def _concat_vjp(b, g, xs, out, a):
    cuts = np.cumsum([x.shape[a["axis"]] for x in xs])[:-1]
    return tuple(np.split(g, cuts, axis=a["axis"]))


defstructural(
    "concatenate",
    shape=_concat_shape,
    forward=lambda b, xs, a, nb: np.concatenate(xs, axis=a["axis"] + nb),
    vjp=_concat_vjp,
    joint=True,
)


def _stack_shape(s, axis):
    if len(set(s)) != 1:
        raise ShapeError(f"stack needs equal shapes, got {list(s)}")
    return np.stack([np.empty(t, dtype=bool) for t in s], axis=axis).shape


defstructural(
    "stack",
    shape=_stack_shape,
    forward=lambda b, xs, a, nb: np.stack(xs, axis=a["axis"] + nb),
    vjp=lambda b, g, xs, out, a: tuple(np.take(g, i, axis=a["axis"]) for i in range(len(xs))),
    joint=True,
)


# --- reductions -----------------------------------------------------------------------------
def _reduce_shape(s, axis, keepdims):
    return np.empty(s[0], dtype=bool).sum(axis=axis, keepdims=keepdims).shape


def _shift(axis, nb):
    return tuple(i + nb for i in axis)


def _expand(g, xshape, axis, keepdims):
    """Reshape a reduced cotangent so it broadcasts against the input."""
    if not keepdims:
        g = np.expand_dims(g, axis)
    return g


defstructural(
    "sum",
    shape=_reduce_shape,
    forward=lambda b, xs, a, nb: _arr(
        np.sum(xs[0], axis=_shift(a["axis"], nb), keepdims=a["keepdims"]), xs[0]
    ),
    vjp=lambda b, g, xs, out, a: (
        np.broadcast_to(_expand(g, xs[0].shape, a["axis"], a["keepdims"]), xs[0].shape),
    ),
)


def _max_weights(b, x, out, axis, keepdims):
    """Where the max is attained, 1/(number of ties); 0 elsewhere (PyTorch's amax rule)."""
    m = _expand(out, x.shape, axis, keepdims)
    mask = b.compare("==", x, m)
    count = mask.sum(axis=axis, keepdims=True)
    return mask, count


def _max_vjp(b, g, xs, out, a):
    x = xs[0]
    mask, count = _max_weights(b, x, _arr(out, x), a["axis"], a["keepdims"])
    gb = _expand(g, x.shape, a["axis"], a["keepdims"])
    share = gb if (count == 1).all() else gb / b.asarray(count)
    return (b.where(mask, share, b.const(0)),)


def _max_taylor(b, coeffs, a, out0):
    x0 = coeffs[0][0]
    axis = a["axis"]
    mask, count = _max_weights(b, x0, _arr(out0, x0), axis, a["keepdims"])
    res = [out0]
    for xk in coeffs[1:]:
        xk = xk[0]
        w = b.where(mask, xk, b.const(0))
        if not (count == 1).all():
            w = w / b.asarray(count)
        nb = xk.ndim - x0.ndim
        res.append(_arr(np.sum(w, axis=_shift(axis, nb), keepdims=a["keepdims"]), xk))
    return res


def _max_kink(b, xs, out, a):
    """Elements of the output where the max is tied (gradient not unique)."""
    mask, count = _max_weights(b, xs[0], _arr(out, xs[0]), a["axis"], a["keepdims"])
    c = count if a["keepdims"] else np.squeeze(count, axis=a["axis"])
    return c > 1


defstructural(
    "max",
    shape=_reduce_shape,
    forward=lambda b, xs, a, nb: _arr(
        b.max(xs[0], axis=_shift(a["axis"], nb), keepdims=a["keepdims"]), xs[0]
    ),
    vjp=_max_vjp,
    linear=False,
    taylor=_max_taylor,
    kink=_max_kink,
    subgradient="ties share the gradient equally (as PyTorch's amax)",
)


# --- matmul ---------------------------------------------------------------------------------
def _matmul_shape(s, **_):
    sa, sb = s
    if len(sb) not in (1, 2) or len(sa) < 1:
        raise ShapeError(f"matmul supports (..., m, k) @ (k, n) or (k,); got {sa} @ {sb}")
    if sa[-1] != sb[0]:
        raise ShapeError(f"matmul: shapes {sa} and {sb} do not align ({sa[-1]} != {sb[0]})")
    return tuple(sa[:-1]) + tuple(sb[1:])


def _matmul_fwd(b, xs, a, nb):
    x, w = xs
    if not nb:
        if x.ndim == 2 and w.ndim == 2:
            return b.matmul(x, w)
        return _arr(np.matmul(x, w), x)
    # batched directions: make the contraction explicit so batch axes never mix with matrix axes
    xv = x.ndim - nb == 1
    wv = w.ndim - nb == 1
    if xv:
        x = x[..., None, :]
    if wv:
        w = w[..., :, None]
    extra = x.ndim - w.ndim
    if extra > 0:
        w = w.reshape(w.shape[:nb] + (1,) * extra + w.shape[nb:])
    out = np.matmul(x, w)
    if wv:
        out = out[..., 0]
    if xv:
        out = out[..., 0, :] if not wv else out[..., 0]
    return _arr(out, x)


def _matmul_vjp(b, g, xs, out, a):
    x, w = xs
    k = x.shape[-1]
    W = w if w.ndim == 2 else w[:, None]
    n = W.shape[1]
    X2 = x.reshape(-1, k)
    G2 = g.reshape(-1, n)
    gx = b.matmul(G2, W.T).reshape(x.shape)
    gw = b.matmul(X2.T, G2).reshape(w.shape)
    return gx, gw


defstructural("matmul", shape=_matmul_shape, forward=_matmul_fwd, vjp=_matmul_vjp)


# --- stop_gradient: identity forward; its input edge is cut at trace time -------------------
def _stop_taylor(b, coeffs, a, out0):
    return [out0] + [np.broadcast_to(b.const(0), c[0].shape) for c in coeffs[1:]]


defstructural(
    "stop_gradient",
    shape=lambda s: s[0],
    forward=lambda b, xs, a, nb: xs[0],
    vjp=lambda b, g, xs, out, a: (None,),
    linear=False,
    taylor=_stop_taylor,
)
