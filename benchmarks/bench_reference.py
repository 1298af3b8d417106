"""Benchmark: forward pass and certified reference gradient per seed model and backend.

Prints a table (run: python benchmarks/bench_reference.py [--repeat N] [--models a,b]).
gradient/forward is the cost of one forward + reverse pass over one forward pass (the
cheap-gradient ratio); the certified columns include every pass the certification needs
(mp: two precisions compared; arb: one rigorous pass). "mp" runs on MPFR when gmpy2 is there.
"""

from __future__ import annotations

import argparse
import time

from refgrad import models
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import digits_to_bits, engine, get_backend
from refgrad.evaluate.forward import forward
from refgrad.reference import GUARD_BITS, reference
from refgrad.trace import trace


def best(f, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        f()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--models", default=",".join(models.MODELS))
    ap.add_argument("--backends", default="mp,arb")
    args = ap.parse_args()
    print(f"{'model':16} {'params':>7} {'backend':7} {'forward@50d':>12} {'fwd+rev@50d':>12} "
          f"{'grad/fwd':>8} {'certified 30d':>14} {'certified 50d':>14}")
    for name in args.models.split(","):
        m = models.MODELS[name]
        params, data = m.example(0)
        graph = trace(m.loss, params, data)
        n = sum(v.size for v in params.values())
        for bk in args.backends.split(","):
            b = get_backend(engine(bk), digits_to_bits(50) + GUARD_BITS)
            rep = 1 if name == "mlp" and bk == "mp" else args.repeat
            t_f = best(lambda b=b, g=graph: forward(g, b), rep)
            t_g = best(lambda b=b, g=graph: backward(g, b, forward(g, b)), rep)
            t30 = best(lambda bk=bk, g=graph: reference(g, digits=30, backend=bk), rep)
            t50 = best(lambda bk=bk, g=graph: reference(g, digits=50, backend=bk), rep)
            print(f"{name:16} {n:7d} {bk:7} {t_f * 1e3:10.1f}ms {t_g * 1e3:10.1f}ms {t_g / t_f:8.2f} "
                  f"{t30 * 1e3:12.1f}ms {t50 * 1e3:12.1f}ms", flush=True)


if __name__ == "__main__":
    main()
