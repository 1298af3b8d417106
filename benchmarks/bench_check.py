"""Benchmark: check() with the user's analytic and numeric gradients (fingerprints included,
on a planted 1/T-style scale bug) and sweep() over 25 steps, per seed model, in float32.

Run: python benchmarks/bench_check.py [--models a,b]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default="mse,lstm_classifier,cnn,mlp")
    args = ap.parse_args()
    print(f"{'model':16} {'params':>7} {'check (bug+fingerprints)':>25} {'check (correct)':>16} "
          f"{'sweep 25 steps':>15}")
    for name in args.models.split(","):
        m = MODELS[name]
        p, d = (in_dtype(a, np.float32) for a in m.example(0))
        g = rg.trace(m.loss, p, d)
        b = get_backend("float32")
        good = backward(g, b, forward(g, b))
        bad = {k: v / np.float32(10) for k, v in good.items()}
        num = dict(rg.finite_difference(g, dtype=np.float32, eps=5e-3))
        n = sum(v.size for v in p.values())
        t = time.perf_counter()
        rg.check(m.loss, p, d, analytic=bad, numeric=num, eps=5e-3)
        t_bug = time.perf_counter() - t
        t = time.perf_counter()
        rg.check(m.loss, p, d, analytic=good, numeric=num, eps=5e-3)
        t_ok = time.perf_counter() - t
        t = time.perf_counter()
        rg.sweep(m.loss, p, d, dtype=np.float32)
        t_sw = time.perf_counter() - t
        print(f"{name:16} {n:7d} {t_bug:24.2f}s {t_ok:15.2f}s {t_sw:14.2f}s", flush=True)


if __name__ == "__main__":
    main()
