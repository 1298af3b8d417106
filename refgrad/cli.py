"""The `refgrad` command: built-in models or file.py:function, arrays from files, verdicts.

Exit status: 0 when the verdict is correct/ok, 1 when a bug or problem is found, 2 on bad
usage or input (one line on stderr saying what is wrong).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
from typing import Any

import numpy as np

from refgrad.errors import InputError, RefgradError
from refgrad.io import read_arrays
from refgrad.models import MODELS, in_dtype
from refgrad.report.files import atomic_write

DTYPES = ("float16", "float32", "float64")


def _say(text: str) -> None:
    print(text, flush=True)


# --- models ---------------------------------------------------------------------------------
class Spec:
    """A loss to check: a built-in model (with options) or a user's file.py:function."""

    def __init__(self, spec: str, options: list[str]):
        self.model = None
        if ".py:" in spec:
            path, func = spec.rsplit(":", 1)
            if options:
                raise InputError(f"options {options} are for built-in models, not {spec}")
            if not os.path.isfile(path):
                raise InputError(f"MODEL file {path} does not exist")
            mod_spec = importlib.util.spec_from_file_location("refgrad_user_model", path)
            module = importlib.util.module_from_spec(mod_spec)
            try:
                mod_spec.loader.exec_module(module)  # type: ignore[union-attr]
            except Exception as e:  # the user's file: report, don't trace back into it
                raise InputError(f"cannot import {path}: {type(e).__name__}: {e}") from None
            if not callable(getattr(module, func, None)):
                raise InputError(f"{path} has no function {func!r}")
            self.name, self.loss = spec, getattr(module, func)
            return
        if spec not in MODELS:
            raise InputError(f"unknown model {spec!r}: built-in models are {', '.join(MODELS)}, "
                             "or give path/to/file.py:function")
        try:
            self.model = MODELS[spec].configure(**_options(options)) if options else MODELS[spec]
        except (TypeError, ValueError) as e:
            raise InputError(f"model {spec}: bad options {' '.join(options)}: {e}") from None
        self.name, self.loss = spec, self.model.loss

    def point(self, params: str | None, data: str | None, seed: int, dtype: Any) -> tuple:
        """params and data: from files when given, else the model's deterministic example."""
        m = self.model
        if m is None:
            if params is None:
                raise InputError(f"{self.name}: give --params (and --data) for a file model")
            p = read_arrays(params, kind="params")
            d = read_arrays(data, None, kind="data") if data else {}
            return in_dtype(p, dtype), in_dtype(d, dtype)
        ep, ed = m.example(seed)
        p = read_arrays(params, m.params, kind="params") if params else ep
        ints = tuple(k for k, v in ed.items() if v.dtype.kind in "iu")
        if params and not data and m.data:
            print(f"refgrad: note: no --data given: using {self.name}'s example data",
                  file=sys.stderr)
        d = read_arrays(data, m.data, kind="data", ints=ints) if data else ed
        return in_dtype(p, dtype), in_dtype(d, dtype)


def _options(words: list[str]) -> dict[str, Any]:
    """--name value pairs: sizes are positive integers (a list of them as 64,32,10)."""
    opts, i = {}, 0
    while i < len(words):
        w = words[i]
        if not w.startswith("--") or i + 1 >= len(words):
            raise InputError(f"model options come as --name value pairs; got {words[i:]}")
        v = words[i + 1]
        try:
            vals = [int(x) for x in v.split(",")]
        except ValueError:
            raise InputError(f"model option {w} takes a positive integer (or a list like "
                             f"64,32,10), got {v!r}") from None
        if any(x < 1 for x in vals):
            raise InputError(f"model option {w} must be at least 1, got {v!r}")
        opts[w[2:].replace("-", "_")] = tuple(vals) if "," in v else vals[0]
        i += 2
    return opts


# --- subcommands ----------------------------------------------------------------------------
def cmd_models(args: argparse.Namespace, extra: list[str]) -> int:
    for name, m in MODELS.items():
        _say(f"{name}  (options: {', '.join(f'--{k} {v}' for k, v in m.options.items()) or 'none'})")
        _say("  " + m.description.replace("\n", "\n  "))
        _say("  params: " + ", ".join(f"{k} {v}" for k, v in m.params.items()))
        _say("  data:   " + ", ".join(f"{k} {v}" for k, v in m.data.items()))
        _say("")
    return 0


def cmd_check(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.score.diagnose import check

    if not args.analytic and not args.numeric and args.eps is None:
        raise InputError("give --analytic A and/or --numeric N (or --eps E to check refgrad's own FD)")
    spec = Spec(args.model, extra)
    p, d = spec.point(args.params, args.data, args.seed, args.dtype)
    shapes = {k: v.shape for k, v in p.items()}
    a = read_arrays(args.analytic, shapes, kind="analytic gradient") if args.analytic else None
    n = read_arrays(args.numeric, shapes, kind="numeric gradient") if args.numeric else None
    cast = lambda c: None if c is None else in_dtype(c, args.dtype)  # noqa: E731
    r = check(spec.loss, p, d, analytic=cast(a), numeric=cast(n), dtype=args.dtype,
              eps=args.eps, scheme=args.scheme, digits=args.digits)
    _say(r.to_json() if args.json else str(r))
    return 0 if r.ok else 1


def cmd_sweep(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.score.sweep import sweep

    spec = Spec(args.model, extra)
    p, d = spec.point(args.params, args.data, args.seed, args.dtype)
    steps = None
    if args.fd_steps:
        try:
            steps = [float(s) for s in args.fd_steps.split(",")]
        except ValueError:
            raise InputError(f"--fd-steps takes comma-separated numbers, got {args.fd_steps!r}") from None
    s = sweep(spec.loss, p, d, dtype=args.dtype, scheme=args.scheme, steps=steps,
              progress=_progress("sweep") if sys.stderr.isatty() else None)
    if args.plot:
        s.plot(args.plot)
    _say(json.dumps(s.to_dict(), indent=2) if args.json else s.table()
         + (f"\nplot: {args.plot}" if args.plot else ""))
    return 0


def _progress(what: str):
    def report(i: int, n: int) -> None:
        print(f"\r{what} {i}/{n}", end="\n" if i == n else "", file=sys.stderr, flush=True)

    return report


def cmd_reference(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.reference import format_mpf, reference

    if args.output and os.path.exists(args.output) and not args.force:
        raise InputError(f"{args.output} exists; pass --force to overwrite it")
    spec = Spec(args.model, extra)
    p, d = spec.point(args.params, args.data, args.seed, np.float64)
    ref = reference(spec.loss, p, d, digits=args.digits)
    doc = {"model": spec.name, "certified_digits": ref.certified_digits,
           "loss": format_mpf(ref.value, ref.value_digits),
           "grad": {k: ref.format_grad(k).tolist() for k in ref.grad},
           "shapes": {k: list(v.shape) for k, v in ref.grad.items()},
           "kinks": [str(k) for k in ref.kinks]}
    if args.output:
        text = json.dumps(doc, indent=1)
        atomic_write(args.output, lambda f: f.write(text.encode("utf-8")), overwrite=args.force)
    if args.json:
        _say(json.dumps(doc, indent=1))
    else:
        _say(ref.summary())
        for k in ref.grad:
            _say(f"grad[{k!r}] (certified digits):")
            flat = ref.format_grad(k).reshape(-1)
            for i, s in enumerate(flat[:args.show]):
                _say(f"  {tuple(int(j) for j in np.unravel_index(i, ref.grad[k].shape))}  {s}")
            if flat.size > args.show:
                _say(f"  ... {flat.size - args.show} more (use -o FILE or --json)")
    return 0


def cmd_fixture(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.report.fixtures import fixture

    spec = Spec(args.model, extra)
    p, d = spec.point(args.params, args.data, args.seed, np.float64)
    desc = spec.model.description if spec.model else spec.name
    fx = fixture(spec.loss, p, d, digits=args.digits, name=spec.name, description=desc)
    fx.save(args.output, overwrite=args.force)
    _say(f"wrote {args.output}")
    return 0


def cmd_certify(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.score.certify import certify

    spec = Spec(args.model, extra)
    p, d = spec.point(args.params, args.data, args.seed, np.float64)
    c = certify(args.formula, spec.loss, p, d, wrt=args.wrt, points=args.points)
    _say(json.dumps(c.to_dict(), indent=2, default=str) if args.json else str(c))
    return 0 if c.verdict != "refuted" else 1


def cmd_example(args: argparse.Namespace, extra: list[str]) -> int:
    """Write a model's example point as text files, one value per line (as C++ would)."""
    spec = Spec(args.model, extra)
    if spec.model is None:
        raise InputError("`refgrad example` takes a built-in model")
    p, d = spec.point(None, None, args.seed, args.dtype)
    for sub, arrays in (("params", p), ("data", d)):
        os.makedirs(os.path.join(args.out, sub), exist_ok=True)
        for k, v in arrays.items():
            fmt = "%d" if v.dtype.kind in "iu" else ("%.9g" if v.dtype.itemsize <= 4 else "%.17g")
            np.savetxt(os.path.join(args.out, sub, f"{k}.txt"), v.reshape(-1), fmt=fmt)
    _say(f"wrote {args.out}/params and {args.out}/data ({args.dtype}, row-major, one value per line)")
    return 0


def cmd_demo(args: argparse.Namespace, extra: list[str]) -> int:
    from refgrad.demo import DEMOS

    os.makedirs(args.out, exist_ok=True)
    for name in [args.story] if args.story != "all" else list(DEMOS):
        DEMOS[name](args.out, _say)
    return 0


# --- parser ---------------------------------------------------------------------------------
def _point_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="built-in model name (see `refgrad models`) or path/file.py:function")
    p.add_argument("--params", help="directory of one file per tensor, or a .npz/.json archive")
    p.add_argument("--data", help="like --params, for the data (inputs, targets, labels)")
    p.add_argument("--seed", type=int, default=0, help="example seed when --params is not given")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="refgrad", description="Exact gradients, and whether yours is right.")
    sub = ap.add_subparsers(dest="command", required=True)
    p = sub.add_parser("demo", help="the user stories end to end (float32, with plots)")
    p.add_argument("story", nargs="?", default="lstm", choices=["lstm", "cnn", "mse", "all"])
    p.add_argument("--out", default=".", help="directory for the plots")
    p.set_defaults(func=cmd_demo)
    p = sub.add_parser("check", help="verdict on your analytic and/or numeric gradient")
    _point_args(p)
    p.add_argument("--analytic", help="your backprop gradient (files named after the params)")
    p.add_argument("--numeric", help="your finite-difference gradient")
    p.add_argument("--dtype", choices=DTYPES, default="float32", help="your code's float type")
    p.add_argument("--eps", type=float, help="the step your finite differences used")
    p.add_argument("--scheme", default="central",
                   choices=["forward", "backward", "central", "five_point", "complex"])
    p.add_argument("--digits", type=int, default=30)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_check)
    p = sub.add_parser("sweep", help="FD error vs step: observed and predicted")
    _point_args(p)
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.add_argument("--scheme", default="central",
                   choices=["forward", "backward", "central", "five_point", "complex"])
    p.add_argument("--fd-steps", help="comma-separated FD steps (default: 25 up to 1, by dtype)")
    p.add_argument("--plot", help="write the V curve to this PNG")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_sweep)
    p = sub.add_parser("reference", help="exact loss and gradient with certified digits")
    _point_args(p)
    p.add_argument("--digits", type=int, default=30)
    p.add_argument("-o", "--output", help="write JSON here (atomic)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--show", type=int, default=10, help="entries per tensor to print")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_reference)
    p = sub.add_parser("fixture", help="write a test fixture: .json, .npz or .h (C/C++)")
    _point_args(p)
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--digits", type=int, default=30)
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.set_defaults(func=cmd_fixture)
    p = sub.add_parser("certify", help="prove or refute a hand-derived gradient formula")
    _point_args(p)
    p.add_argument("--wrt", required=True, help="the param the formula is the gradient for")
    p.add_argument("--formula", required=True, help='e.g. "(X[i,j] - T[i,j])/64"')
    p.add_argument("--points", type=int, default=8)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_certify)
    p = sub.add_parser("example", help="write a built-in model's example point as text files")
    p.add_argument("model")
    p.add_argument("--out", required=True, help="directory: gets params/ and data/")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dtype", choices=DTYPES, default="float32")
    p.set_defaults(func=cmd_example)
    p = sub.add_parser("models", help="list the built-in models")
    p.set_defaults(func=cmd_models)
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args, extra = ap.parse_known_args(argv)
    if extra and args.command in ("demo", "models"):
        ap.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args, extra)
    except RefgradError as e:
        print(f"refgrad: error: {e}", file=sys.stderr)
        return 2
    except (ValueError, KeyError, OSError) as e:  # configure() etc.: bad usage, not a crash
        print(f"refgrad: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
