"""`refgrad demo`: the three user stories, end to end, on the seed models in float32."""

from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np

from refgrad.differentiate.finite_difference import finite_difference
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype
from refgrad.score.diagnose import check
from refgrad.score.sweep import sweep
from refgrad.trace.tracer import trace

Say = Callable[[str], None]


def _case(name: str, dtype=np.float32):
    m = MODELS[name]
    p, d = m.example(0)
    p, d = in_dtype(p, dtype), in_dtype(d, dtype)
    g = trace(m.loss, p, d)
    b = get_backend(np.dtype(dtype).name)
    return m, g, backward(g, b, forward(g, b))  # a correct float32 backprop


def _rule(say: Say, title: str) -> None:
    say("")
    say(f"=== {title} " + "=" * max(0, 72 - len(title)))


def demo_lstm(out: str, say: Say) -> None:
    """Story 1: a float32 LSTM whose backprop averaged by T; FD at eps 5e-3; the sweet spot."""
    m, g, good = _case("lstm_classifier")
    T = g.nodes[g.data["xs"]].shape[0]
    _rule(say, f"story 1: float32 LSTM (T={T}) — 'can I blame float precision?'")
    say(m.description.splitlines()[0])
    numeric = dict(finite_difference(g, dtype=np.float32, eps=5e-3))
    buggy = {k: v / np.float32(T) for k, v in good.items()}
    say("\n-- your backprop (averages the gradient by the number of time steps) + central FD, eps 5e-3:")
    say(str(check(g, analytic=buggy, numeric=numeric, eps=5e-3)))
    say("\n-- after the fix:")
    say(check(g, analytic=good, numeric=numeric, eps=5e-3).summary)
    s = sweep(g, dtype=np.float32)
    path = s.plot(os.path.join(out, "sweep_lstm.png"))
    say(f"\n-- the sweet spot: best step observed {s.best_observed:.2g}, predicted "
        f"{s.best_predicted:.2g} (the forum found 0.02); plot: {path}")


def demo_cnn(out: str, say: Say) -> None:
    """Story 2: correct float32 CNN backprop; only a few digits match the FD for some entries."""
    m, g, good = _case("cnn")
    _rule(say, "story 2: float32 CNN — 'how close is close enough?'")
    numeric = dict(finite_difference(g, dtype=np.float32, eps=1e-3))
    r = check(g, analytic=good, numeric=numeric, eps=1e-3)
    say(str(r))
    path = sweep(g, dtype=np.float32).plot(os.path.join(out, "sweep_cnn.png"))
    say(f"\nplot: {path}")


def demo_mse(out: str, say: Say) -> None:
    """Story 3: MSE is quadratic, so larger steps are better; and an FD that never goes up."""
    m, g, good = _case("mse")
    _rule(say, "story 3: float32 MSE — 'why does a huge epsilon improve the discrepancy?'")
    for eps in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
        r = check(g, numeric=dict(finite_difference(g, dtype=np.float32, eps=eps)), eps=eps)
        say(f"eps {eps:<7g} discrepancy {r.metrics['numeric_vs_exact_discrepancy']:.3g}"
            f"  (predicted {r.metrics['predicted_numeric_discrepancy']:.3g})  -> {r.numeric_verdict}")
    say(f"\n{r.findings[0]}")
    b = get_backend("float32")
    x, f0, h = g.values[g.params["X"]].astype(np.float32), forward(g, b)[g.output], np.float32(1e-2)
    wrong = np.empty_like(x)
    for idx in np.ndindex(x.shape):  # "i -= EPS; down = f(); i += EPS; up = f()": never goes up
        xd = x.copy()
        xd[idx] -= h
        wrong[idx] = (f0 - forward(g, b, {"X": xd})[g.output]) / (2 * h)
    say("\n-- an FD that perturbs down, then back to the original point, and divides by 2·eps:")
    say(check(g, numeric={"X": wrong}, eps=1e-2).summary)
    path = sweep(g, dtype=np.float32).plot(os.path.join(out, "sweep_mse.png"))
    say(f"plot: {path}")


DEMOS = {"lstm": demo_lstm, "cnn": demo_cnn, "mse": demo_mse}
