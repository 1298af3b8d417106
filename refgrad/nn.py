"""Layers as compositions of refgrad ops, in PyTorch's layouts (so weights can be copied over).

Every layer is plain ops (matmul, getitem, pad, elementwise), so its gradient is exact by
composition: no layer has a hand-written backward pass.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refgrad.errors import ShapeError
from refgrad.trace import ops as rg
from refgrad.trace.ops import log_softmax, relu, sigmoid, softmax, tanh  # re-exported

__all__ = [
    "dense", "lstm_cell", "lstm", "gru_cell", "gru", "conv2d", "max_pool2d", "flatten",
    "relu", "sigmoid", "tanh", "softmax", "log_softmax",
]


def dense(x: Any, W: Any, b: Any = None) -> Any:
    """y = x @ W.T + b, W of shape (out, in) as torch.nn.Linear; x is (in,) or (..., in)."""
    y = rg.matmul(x, rg.transpose(W))
    return y if b is None else y + b


def _gate(z: Any, k: int, H: int) -> Any:
    """The k-th block of H units along the last axis of stacked gate pre-activations."""
    return z[..., k * H:(k + 1) * H]


def _biases(bias_ih: Any, bias_hh: Any, bias: Any) -> tuple[Any, Any]:
    if bias is not None and (bias_ih is not None or bias_hh is not None):
        raise ShapeError("pass either bias (one combined bias) or bias_ih/bias_hh, not both")
    return (bias, None) if bias is not None else (bias_ih, bias_hh)


def _affine(x: Any, h: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any, bias_hh: Any) -> Any:
    """x @ W_ih.T + b_ih + h @ W_hh.T + b_hh: all gates at once, stacked on the last axis."""
    return dense(x, weight_ih, bias_ih) + dense(h, weight_hh, bias_hh)


def lstm_cell(x: Any, h: Any, c: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any = None,
              bias_hh: Any = None, *, bias: Any = None) -> tuple[Any, Any]:
    """One LSTM step in PyTorch layout; returns (h', c').

    z = x W_ih^T + b_ih + h W_hh^T + b_hh, W_ih (4H, D), W_hh (4H, H), gate blocks i, f, g, o;
    i, f, o = sigmoid, g = tanh; c' = f*c + i*g; h' = o*tanh(c').
    `bias=` is the single-bias variant (b = b_ih + b_hh, as Keras/most C++ code).
    """
    bias_ih, bias_hh = _biases(bias_ih, bias_hh, bias)
    H = weight_hh.shape[-1]
    if weight_ih.shape[0] != 4 * H or weight_hh.shape != (4 * H, H):
        raise ShapeError(f"lstm_cell: weight_ih {weight_ih.shape} and weight_hh {weight_hh.shape} "
                         f"must be (4H, D) and (4H, H) with H = {H}")
    z = _affine(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
    i, f = sigmoid(_gate(z, 0, H)), sigmoid(_gate(z, 1, H))
    g, o = tanh(_gate(z, 2, H)), sigmoid(_gate(z, 3, H))
    c_new = f * c + i * g
    return o * tanh(c_new), c_new


def _state0(s: Any, xs: Any, H: int) -> Any:
    """A given initial state, or exact zeros of shape (..., H) matching the batch of xs."""
    return np.zeros(tuple(xs.shape[1:-1]) + (H,)) if s is None else s


def lstm(xs: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None,
         h0: Any = None, c0: Any = None, *, bias: Any = None) -> tuple[Any, tuple[Any, Any]]:
    """LSTM unrolled over T steps of xs (T, D) or (T, N, D); h0 = c0 = 0 unless given.

    Returns (hs, (h_T, c_T)) with hs of shape (T, ..., H), as torch.nn.LSTM (one layer).
    """
    H = weight_hh.shape[-1]
    h, c = _state0(h0, xs, H), _state0(c0, xs, H)
    hs = []
    for x in xs:
        h, c = lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh, bias=bias)
        hs.append(h)
    return rg.stack(hs), (h, c)


def gru_cell(x: Any, h: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any = None,
             bias_hh: Any = None) -> Any:
    """One GRU step in PyTorch layout (W_ih (3H, D), W_hh (3H, H), gate blocks r, z, n).

    r, z = sigmoid(W_i x + b_i + W_h h + b_h); n = tanh(W_in x + b_in + r*(W_hn h + b_hn));
    h' = (1 - z)*n + z*h.
    """
    H = weight_hh.shape[-1]
    if weight_ih.shape[0] != 3 * H or weight_hh.shape != (3 * H, H):
        raise ShapeError(f"gru_cell: weight_ih {weight_ih.shape} and weight_hh {weight_hh.shape} "
                         f"must be (3H, D) and (3H, H) with H = {H}")
    gi, gh = dense(x, weight_ih, bias_ih), dense(h, weight_hh, bias_hh)
    r = sigmoid(_gate(gi, 0, H) + _gate(gh, 0, H))
    z = sigmoid(_gate(gi, 1, H) + _gate(gh, 1, H))
    n = tanh(_gate(gi, 2, H) + r * _gate(gh, 2, H))
    return (1 - z) * n + z * h


def gru(xs: Any, weight_ih: Any, weight_hh: Any, bias_ih: Any = None, bias_hh: Any = None,
        h0: Any = None) -> tuple[Any, Any]:
    """GRU unrolled over xs (T, D) or (T, N, D); h0 = 0 unless given. Returns (hs, h_T)."""
    h = _state0(h0, xs, weight_hh.shape[-1])
    hs = []
    for x in xs:
        h = gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
        hs.append(h)
    return rg.stack(hs), h


# --- convolution and pooling: im2col with integer-array indexing -----------------------------
def _pair(v: Any, what: str) -> tuple[int, int]:
    p = (int(v), int(v)) if np.ndim(v) == 0 else tuple(int(t) for t in v)
    if len(p) != 2:
        raise ShapeError(f"{what} must be an int or a pair, got {v!r}")
    return p  # type: ignore[return-value]


def _patch_index(H: int, W: int, kh: int, kw: int, sh: int, sw: int) -> tuple[np.ndarray, ...]:
    """Row/column indices (L, kh*kw) of every kh×kw window, L = Ho*Wo windows in row-major order."""
    Ho, Wo = (H - kh) // sh + 1, (W - kw) // sw + 1
    if Ho < 1 or Wo < 1:
        raise ShapeError(f"a {kh}x{kw} window does not fit a {H}x{W} input")
    oi, oj = np.meshgrid(np.arange(Ho) * sh, np.arange(Wo) * sw, indexing="ij")
    ki, kj = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")
    rows = oi.reshape(-1, 1) + ki.reshape(1, -1)
    cols = oj.reshape(-1, 1) + kj.reshape(1, -1)
    return rows, cols, np.array([Ho, Wo])


def _batched(x: Any, what: str) -> tuple[Any, bool]:
    if x.ndim == 3:
        return rg.reshape(x, (1,) + tuple(x.shape)), True
    if x.ndim != 4:
        raise ShapeError(f"{what} needs x of shape (N, C, H, W) or (C, H, W), got {x.shape}")
    return x, False


def conv2d(x: Any, w: Any, b: Any = None, stride: Any = 1, padding: Any = 0) -> Any:
    """Cross-correlation as torch.nn.functional.conv2d: x (N, C, H, W), w (O, C, kh, kw), b (O,).

    y[n,o,i,j] = b[o] + Σ_{c,p,q} w[o,c,p,q] · xpad[n, c, s·i+p, s·j+q]; computed as
    im2col (one integer-array getitem) and one 2-D matmul (N·L, C·kh·kw) @ (C·kh·kw, O).
    """
    x, squeeze = _batched(x, "conv2d")
    N, C, H, W = x.shape
    Co, Cw, kh, kw = w.shape
    if Cw != C:
        raise ShapeError(f"conv2d: weight {w.shape} expects {Cw} input channels, "
                         f"x {x.shape} has {C}")
    (sh, sw), (ph, pw) = _pair(stride, "stride"), _pair(padding, "padding")
    if ph or pw:
        x = rg.pad(x, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    rows, cols, (Ho, Wo) = _patch_index(H + 2 * ph, W + 2 * pw, kh, kw, sh, sw)
    K = kh * kw
    # x[:, c, rows, cols] with channel-major columns: (N, L, C*K) in w.reshape(O, C*K) order
    chan = np.repeat(np.arange(C), K).reshape(1, -1)
    patches = x[:, chan, np.tile(rows, (1, C)), np.tile(cols, (1, C))]
    w2 = rg.reshape(w, (Co, C * K))
    y = rg.matmul(rg.reshape(patches, (N * Ho * Wo, C * K)), rg.transpose(w2))
    if b is not None:
        y = y + b
    y = rg.transpose(rg.reshape(y, (N, Ho, Wo, Co)), (0, 3, 1, 2))
    return rg.reshape(y, y.shape[1:]) if squeeze else y


def max_pool2d(x: Any, kernel: Any, stride: Any = None) -> Any:
    """Max over each kernel window (no padding), stride = kernel unless given; NCHW or CHW.

    Ties share the gradient equally (refgrad's max rule; PyTorch picks one element instead).
    """
    x, squeeze = _batched(x, "max_pool2d")
    N, C, H, W = x.shape
    kh, kw = _pair(kernel, "kernel")
    sh, sw = _pair(kernel if stride is None else stride, "stride")
    rows, cols, (Ho, Wo) = _patch_index(H, W, kh, kw, sh, sw)
    y = rg.reshape(rg.max(x[:, :, rows, cols], axis=-1), (N, C, Ho, Wo))
    return rg.reshape(y, y.shape[1:]) if squeeze else y


def flatten(x: Any, start_dim: int = 1) -> Any:
    """Merge axes start_dim.. into one, as torch.flatten(x, start_dim) (default keeps the batch)."""
    lead = tuple(x.shape[:start_dim])
    return rg.reshape(x, lead + (int(np.prod(x.shape[start_dim:], dtype=np.int64)),))
