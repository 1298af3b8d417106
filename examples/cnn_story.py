"""Story 2: a correct float32 CNN whose first layer matches the FD to only a few digits.
Run: python examples/cnn_story.py"""

import numpy as np

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype

model = MODELS["cnn"]
params, data = (in_dtype(a, np.float32) for a in model.example(seed=6))
graph = rg.trace(model.loss, params, data)
f32 = get_backend("float32")
backprop = backward(graph, f32, forward(graph, f32))  # a correct float32 backprop
numeric = rg.finite_difference(graph, dtype=np.float32, eps=1e-3)

report = rg.check(graph, analytic=backprop, numeric=dict(numeric), eps=1e-3)
print(report)
# analytic CORRECT although cs231n's 1e-2 rule flags entries (they are tiny: cancellation);
# the FD itself is KINK at eps 1e-3: some stencils cross a ReLU, and the report says which
