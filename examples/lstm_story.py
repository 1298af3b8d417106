"""Story 1: a float32 LSTM whose backprop averaged the gradient by T. Run: python examples/lstm_story.py"""

import numpy as np

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype

model = MODELS["lstm_classifier"]  # D=H=5, T=10, dense + softmax-CE at every step, summed
params, data = model.example(seed=0)
params, data = in_dtype(params, np.float32), in_dtype(data, np.float32)  # what float32 code holds

# stand-in for "your" float32 backprop: refgrad's float32 reverse pass, then the bug of the story
graph = rg.trace(model.loss, params, data)
f32 = get_backend("float32")
backprop = backward(graph, f32, forward(graph, f32))
averaged = {k: g / np.float32(10) for k, g in backprop.items()}
numeric = rg.finite_difference(model.loss, params, data, dtype=np.float32, eps=5e-3)

report = rg.check(model.loss, params, data, analytic=averaged, numeric=dict(numeric), eps=5e-3)
print(report.summary)  # analytic: BUG — scale ... 1/T ...; numeric ...: OK
print(rg.check(model.loss, params, data, analytic=backprop, eps=5e-3).summary)  # CORRECT

s = rg.sweep(model.loss, params, data, dtype=np.float32)
print(f"best step: observed {s.best_observed:.2g}, predicted {s.best_predicted:.2g}")
print("plot:", s.plot("sweep_lstm.png"))
