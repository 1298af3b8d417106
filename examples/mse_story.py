"""Story 3: why a huge epsilon improves an MSE layer's gradient check. Run: python examples/mse_story.py"""

import numpy as np

import refgrad as rg
from refgrad.models import MODELS, in_dtype

model = MODELS["mse"]  # loss = (1/r) Σ_rows (1/(2n)) Σ_i (x − t)², X 8×8
params, data = (in_dtype(a, np.float32) for a in model.example(seed=0))

for eps in (1e-4, 1e-3, 1e-2, 1e-1, 1.0):
    fd = rg.finite_difference(model.loss, params, data, dtype=np.float32, eps=eps)
    r = rg.check(model.loss, params, data, numeric=dict(fd), eps=eps)
    print(f"eps {eps:<6g} discrepancy {r.metrics['numeric_vs_exact_discrepancy']:.2g}"
          f" (predicted {r.metrics['predicted_numeric_discrepancy']:.2g}) {r.numeric_verdict}")
print([str(f) for f in r.findings if f.kind == "truncation_free"][0])

# the hand-derived formula, certified
cert = rg.certify("(X[i,j] - T[i,j])/(8*8)", model.loss, params, data, wrt="X")
print("dE/dX = (X - T)/(r n):", cert.verdict)
print("dE/dX = (X - T)/n:    ", rg.certify("(X[i,j] - T[i,j])/8", model.loss, params, data, wrt="X").verdict)
