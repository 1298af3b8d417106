"""Seed models: the networks of the user stories, as losses `fn(params, data)` with examples.

Each Model carries its equations and layout, the shapes of its params and data, and a
deterministic `example(seed)` (numpy default_rng; weights uniform ±1/sqrt(fan_in) as PyTorch's
default init). Factories take sizes as keywords so a CLI can pass options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refgrad import losses, nn
from refgrad.trace import ops as rg

Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class Model:
    """A named loss with its documentation, shapes and a reproducible example point."""

    name: str
    description: str
    loss: Callable[[Any, Any], Any]
    example: Callable[..., tuple[Arrays, Arrays]]
    params: dict[str, tuple[int, ...]]
    data: dict[str, tuple[int, ...]]
    wrt: list[str]
    options: dict[str, Any] = field(default_factory=dict)
    factory: Callable[..., Model] | None = None

    def configure(self, **options: Any) -> Model:
        """The same model with other sizes (e.g. hidden=8), through its factory."""
        if self.factory is None:
            if options:
                raise ValueError(f"model {self.name!r} takes no options")
            return self
        unknown = set(options) - set(self.options)
        if unknown:
            raise ValueError(f"model {self.name!r} has no option(s) {sorted(unknown)}; "
                             f"options: {sorted(self.options)}")
        return self.factory(**{**self.options, **options})


def _uniform(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int) -> np.ndarray:
    bound = 1.0 / np.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape)


def _example(shapes: dict[str, tuple[int, ...]], fan_in: dict[str, int],
             make_data: Callable[[np.random.Generator], Arrays]) -> Callable[..., tuple]:
    """example(seed=0): params drawn in `shapes` order, then data, from one generator."""
    def example(seed: int = 0) -> tuple[Arrays, Arrays]:
        rng = np.random.default_rng(seed)
        params = {k: _uniform(rng, s, fan_in[k]) for k, s in shapes.items()}
        return params, make_data(rng)
    return example


# --- mse: the third user story ----------------------------------------------------------------
def mse(rows: int = 8, features: int = 8) -> Model:
    """Per-row half-MSE averaged over rows, with the inputs X themselves as parameters."""
    def loss(p: Any, d: Any) -> Any:
        return losses.mse_rows(p["X"], d["T"])

    def example(seed: int = 0) -> tuple[Arrays, Arrays]:
        rng = np.random.default_rng(seed)
        return {"X": rng.standard_normal((rows, features))}, \
            {"T": rng.standard_normal((rows, features))}

    return Model(
        "mse",
        "L = (1/r) Σ_rows (1/(2n)) Σ_i (X_i − T_i)², X, T of shape (r, n) = "
        f"({rows}, {features}); dL/dX = (X − T)/(r·n). L is quadratic: f''' = 0.",
        loss, example, {"X": (rows, features)}, {"T": (rows, features)}, ["X"],
        {"rows": rows, "features": features}, mse)


# --- lstm_classifier: the first user story ----------------------------------------------------
def lstm_classifier(hidden: int = 5, steps: int = 10, inputs: int = 5, classes: int = 5) -> Model:
    """LSTM (PyTorch layout, h0 = c0 = 0) → dense → softmax cross-entropy summed over steps."""
    H, T, D, K = hidden, steps, inputs, classes
    shapes = {"weight_ih": (4 * H, D), "weight_hh": (4 * H, H), "bias_ih": (4 * H,),
              "bias_hh": (4 * H,), "W_out": (K, H), "b_out": (K,)}
    fan_in = {"weight_ih": H, "weight_hh": H, "bias_ih": H, "bias_hh": H, "W_out": H, "b_out": H}

    def loss(p: Any, d: Any) -> Any:
        hs, _ = nn.lstm(d["xs"], p["weight_ih"], p["weight_hh"], p["bias_ih"], p["bias_hh"])
        logits = nn.dense(hs, p["W_out"], p["b_out"])
        return losses.softmax_cross_entropy(logits, d["labels"], reduction="sum")

    def data(rng: np.random.Generator) -> Arrays:
        return {"xs": rng.standard_normal((T, D)), "labels": rng.integers(0, K, size=T)}

    return Model(
        "lstm_classifier",
        "z_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh, gates stacked i, f, g, o (PyTorch);\n"
        "c_t = σ(f)·c_{t-1} + σ(i)·tanh(g); h_t = σ(o)·tanh(c_t); h_0 = c_0 = 0;\n"
        f"L = Σ_t CE(softmax(W_out h_t + b_out), y_t). D={D}, H={H}, T={T}, classes={K}.",
        loss, _example(shapes, fan_in, data), shapes, {"xs": (T, D), "labels": (T,)},
        list(shapes), {"hidden": H, "steps": T, "inputs": D, "classes": K}, lstm_classifier)


# --- cnn: the second user story ---------------------------------------------------------------
def cnn(size: int = 8, channels: int = 4, classes: int = 5) -> Model:
    """conv3×3 1→c + ReLU → conv3×3 c→c + ReLU → flatten → dense → softmax CE (stride 1, pad 0)."""
    S, C, K = size, channels, classes
    F = C * (S - 4) ** 2
    shapes = {"w1": (C, 1, 3, 3), "b1": (C,), "w2": (C, C, 3, 3), "b2": (C,),
              "W3": (K, F), "b3": (K,)}
    fan_in = {"w1": 9, "b1": 9, "w2": 9 * C, "b2": 9 * C, "W3": F, "b3": F}

    def loss(p: Any, d: Any) -> Any:
        a1 = nn.relu(nn.conv2d(d["x"], p["w1"], p["b1"]))
        a2 = nn.relu(nn.conv2d(a1, p["w2"], p["b2"]))
        logits = nn.dense(nn.flatten(a2), p["W3"], p["b3"])
        return losses.softmax_cross_entropy(logits, d["label"], reduction="mean")

    def data(rng: np.random.Generator) -> Arrays:
        return {"x": rng.standard_normal((1, 1, S, S)), "label": rng.integers(0, K, size=1)}

    return Model(
        "cnn",
        f"x (N=1, 1, {S}, {S}) NCHW; a1 = relu(conv2d(x, w1) + b1) ({C}×{S-2}×{S-2}); "
        f"a2 = relu(conv2d(a1, w2) + b2) ({C}×{S-4}×{S-4});\n"
        f"L = CE(softmax(W3 flatten(a2) + b3), label), {F}→{K}; conv weights (O, C, kh, kw) "
        "as PyTorch, stride 1, no padding.",
        loss, _example(shapes, fan_in, data), shapes, {"x": (1, 1, S, S), "label": (1,)},
        list(shapes), {"size": S, "channels": C, "classes": K}, cnn)


# --- mlp -----------------------------------------------------------------------------------------
def mlp(batch: int = 16, sizes: tuple[int, ...] = (64, 128, 128, 10)) -> Model:
    """tanh MLP, dense layers in PyTorch layout, mean softmax cross-entropy over the batch."""
    sizes = tuple(int(s) for s in sizes)
    n = len(sizes) - 1
    shapes: dict[str, tuple[int, ...]] = {}
    fan_in: dict[str, int] = {}
    for k in range(n):
        shapes[f"W{k + 1}"], shapes[f"b{k + 1}"] = (sizes[k + 1], sizes[k]), (sizes[k + 1],)
        fan_in[f"W{k + 1}"] = fan_in[f"b{k + 1}"] = sizes[k]

    def loss(p: Any, d: Any) -> Any:
        a = d["X"]
        for k in range(1, n + 1):
            a = nn.dense(a, p[f"W{k}"], p[f"b{k}"])
            a = rg.tanh(a) if k < n else a
        return losses.softmax_cross_entropy(a, d["labels"], reduction="mean")

    def data(rng: np.random.Generator) -> Arrays:
        return {"X": rng.standard_normal((batch, sizes[0])),
                "labels": rng.integers(0, sizes[-1], size=batch)}

    arch = "→".join(map(str, sizes))
    return Model(
        "mlp",
        f"a_0 = X ({batch}, {sizes[0]}); a_k = tanh(a_(k-1) W_k^T + b_k) for hidden layers; "
        f"logits = a_(n-1) W_n^T + b_n; L = mean CE(softmax(logits), labels); {arch}.",
        loss, _example(shapes, fan_in, data), shapes,
        {"X": (batch, sizes[0]), "labels": (batch,)}, list(shapes),
        {"batch": batch, "sizes": sizes}, mlp)


MODELS: dict[str, Model] = {m.name: m for m in (mse(), lstm_classifier(), cnn(), mlp())}


def in_dtype(arrays: Arrays, dtype: Any) -> Arrays:
    """Float arrays rounded to `dtype` (what float code of that dtype holds); ints unchanged."""
    return {k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in arrays.items()}
