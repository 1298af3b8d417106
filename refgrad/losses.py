"""Losses as compositions of refgrad ops, with exact rational normalisations (Fraction(1, n)).

Conventions follow PyTorch: 'mean' divides by the number of elements (or of samples for
cross-entropy), 'sum' does not; stable forms (log-softmax, softplus) are used throughout.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from refgrad.errors import ShapeError
from refgrad.trace import ops as rg
from refgrad.trace.tensor import Tensor

__all__ = ["mse", "mse_rows", "softmax_cross_entropy", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]


def _reduce(per: Any, reduction: str, n: int, what: str) -> Any:
    """'sum' → Σ per; 'mean' → Σ per / n (exact 1/n); 'none' → per itself."""
    if reduction == "sum":
        return rg.sum(per)
    if reduction == "mean":
        return rg.sum(per) * Fraction(1, n)
    if reduction == "none":
        return per
    raise ValueError(f"{what}: reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _shape(a: Any) -> tuple[int, ...]:
    return tuple(a.shape) if isinstance(a, Tensor) else tuple(np.shape(a))


def _same_shape(a: Any, b: Any, what: str) -> None:
    sa, sb = _shape(a), _shape(b)
    if sa != sb:
        raise ShapeError(f"{what}: prediction shape {sa} != target shape {sb}")


def mse(pred: Any, target: Any, reduction: str = "mean") -> Any:
    """Squared error Σ (pred − target)² over all n elements, normalised by reduction.

    'mean': 1/n · Σ;  'sum': Σ;  'half_mean': 1/(2n) · Σ (the ½ that cancels the 2 of d/dx x²).
    """
    _same_shape(pred, target, "mse")
    sq = rg.square(rg.subtract(pred, target))
    n = int(np.prod(sq.shape, dtype=np.int64))
    if reduction == "half_mean":
        return rg.sum(sq) * Fraction(1, 2 * n)
    if reduction == "none":
        raise ValueError("mse: reduction must be 'mean', 'sum' or 'half_mean'")
    return _reduce(sq, reduction, n, "mse")


def mse_rows(pred: Any, target: Any) -> Any:
    """Per-row half-MSE averaged over rows: (1/r) Σ_rows (1/(2n)) Σ_i (x_i − t_i)².

    pred, target: (r, n) (a 1-D input is one row). Gradient: (x − t)/(r·n).
    """
    _same_shape(pred, target, "mse_rows")
    sq = rg.square(rg.subtract(pred, target))
    if sq.ndim == 1:
        sq = rg.reshape(sq, (1,) + sq.shape)
    if sq.ndim != 2:
        raise ShapeError(f"mse_rows needs (rows, features), got shape {sq.shape}")
    row_cost = rg.sum(sq, axis=1) * Fraction(1, 2 * sq.shape[1])
    return rg.mean(row_cost)


def softmax_cross_entropy(logits: Any, labels: Any, reduction: str = "mean") -> Any:
    """−Σ_k y_k log softmax(z)_k per sample, with log-softmax in its stable form.

    logits (N, K) or (K,). labels: integer class indices (numpy ints, shape (N,) or a scalar),
    or class probabilities / one-hot of the logits' shape (traced data or numpy floats).
    'mean' divides by N, as torch.nn.functional.cross_entropy.
    """
    if not isinstance(logits, Tensor):
        raise ShapeError("softmax_cross_entropy: logits must be a traced value")
    lsm = rg.log_softmax(logits, axis=-1)
    batch = tuple(logits.shape[:-1])
    lab_int = not isinstance(labels, Tensor) and np.asarray(labels).dtype.kind in "iu"
    if lab_int:
        idx = np.asarray(labels)
        if idx.shape != batch:
            raise ShapeError(f"softmax_cross_entropy: integer labels of shape {idx.shape} for "
                             f"logits {logits.shape}; expected shape {batch}")
        K = logits.shape[-1]
        if idx.size and (idx.min() < 0 or idx.max() >= K):
            raise ShapeError(f"softmax_cross_entropy: labels must lie in [0, {K}), "
                             f"got min {idx.min()}, max {idx.max()}")
        if batch:
            flat = rg.reshape(lsm, (idx.size, K))
            picked = rg.reshape(flat[np.arange(idx.size), idx.reshape(-1)], batch)
        else:
            picked = lsm[int(idx)]
        per = -picked
    else:
        if _shape(labels) != logits.shape:
            raise ShapeError(
                f"softmax_cross_entropy: labels of shape {_shape(labels)} for logits "
                f"{logits.shape}: give integer class indices (the batch shape {batch}) "
                "or probabilities (the logits' shape)"
            )
        per = -rg.sum(rg.multiply(labels, lsm), axis=-1)
    n = int(np.prod(batch, dtype=np.int64)) if batch else 1
    return _reduce(per, reduction, n, "softmax_cross_entropy")


def binary_cross_entropy(p: Any, y: Any, reduction: str = "mean") -> Any:
    """−[y log p + (1 − y) log(1 − p)] on probabilities p in (0, 1); 'mean' over all elements.

    log(1 − p) is written log1p(−p), the accurate float form; exact backends see the same value.
    """
    _same_shape(p, y, "binary_cross_entropy")
    per = -(y * rg.log(p) + (1 - y) * rg.log1p(rg.negative(p)))
    return _reduce(per, reduction, int(np.prod(per.shape, dtype=np.int64)), "binary_cross_entropy")


def binary_cross_entropy_with_logits(z: Any, y: Any, reduction: str = "mean") -> Any:
    """BCE on logits in the stable form softplus(z) − y·z (= −[y log σ(z) + (1−y) log(1−σ(z))])."""
    _same_shape(z, y, "binary_cross_entropy_with_logits")
    per = rg.softplus(z) - y * z
    return _reduce(per, reduction, int(np.prod(per.shape, dtype=np.int64)),
                   "binary_cross_entropy_with_logits")
