"""Fixtures: exact answers and honest tolerances for testing a gradient in any language.

For each input dtype D in `dtypes` a fixture holds the params/data rounded to D (the reference
is computed at exactly those values: float32 inputs have their own exact gradient), the exact
loss and gradient as decimal strings with their certified digits, those values correctly
rounded to every dtype T in `dtypes` (bit-exact: hex floats), and per-element tolerances for
a correct implementation in each T that holds D's inputs exactly (T at least as wide as D):

    tol_T = 4·scale_T + ½·ulp_T(exact rounded to T)

scale_T = u_T·depth·|∇|abs is how far round-off in T can move the entry (score/baseline.py);
the 4 leaves room for summation orders other than refgrad's. Compare |yours − rounded| ≤ tol.
Take rounded values from the hex floats, not by parsing the decimals: exact ties (common, e.g.
(x − t)/64) round to even, and a truncated decimal lands on one side of the tie.

Arrays are keyed "D/params/X", "D/data/T", "D/loss/{exact,digits,T}" and
"D/grad/X/{exact,digits,T,tol_T}"; formats by suffix: .json (the reference; schema in
fixture.schema.json), .npz (the same keys) and .h (one C/C++ header, arrays flattened row-major).
"""

from __future__ import annotations

import os
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from refgrad.errors import InputError
from refgrad.reference import format_mpf, reference
from refgrad.report.files import atomic_write
from refgrad.report.fixture_formats import C_TYPES, FORMAT, FORMAT_VERSION, LAYOUT, TOLERANCE_RULE
from refgrad.report.fixture_formats import SCHEMA as SCHEMA  # the JSON Schema, public here too
from refgrad.report.fixture_formats import read_header as _read_header
from refgrad.report.fixture_formats import read_json as _read_json
from refgrad.report.fixture_formats import read_npz as _read_npz
from refgrad.report.fixture_formats import write_header as _write_header
from refgrad.report.fixture_formats import write_json as _write_json
from refgrad.report.fixture_formats import write_npz as _write_npz
from refgrad.score.baseline import baseline
from refgrad.trace.tracer import trace


@dataclass
class Fixture:
    """`meta` (name, description, versions, dtypes, rules) and `arrays` keyed as above."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def dtypes(self) -> list[str]:
        return list(self.meta["dtypes"])

    def _group(self, prefix: str, leaf: str = "") -> dict[str, np.ndarray]:
        out = {}
        for k, v in self.arrays.items():
            if k.startswith(prefix) and (k.endswith("/" + leaf) if leaf else "/" not in k[len(prefix):]):
                out[k[len(prefix):len(k) - len(leaf) - 1 if leaf else None]] = v
        return out

    def params(self, dtype: Any = "float64") -> dict[str, np.ndarray]:
        """The inputs of the `dtype` case (exactly representable in it)."""
        return self._group(f"{_name(dtype)}/params/")

    def data(self, dtype: Any = "float64") -> dict[str, np.ndarray]:
        return self._group(f"{_name(dtype)}/data/")

    def grad(self, dtype: Any = "float64", rounded_to: Any = None) -> dict[str, np.ndarray]:
        """The exact gradient of the `dtype` case, correctly rounded (to `dtype` by default)."""
        return self._group(f"{_name(dtype)}/grad/", _name(rounded_to or dtype))

    def exact(self, dtype: Any = "float64") -> dict[str, np.ndarray]:
        """The exact gradient as decimal strings (every digit certified)."""
        return self._group(f"{_name(dtype)}/grad/", "exact")

    def tolerance(self, dtype: Any = "float64", impl: Any = None) -> dict[str, np.ndarray]:
        """Per-element tolerance for a correct implementation in `impl` (default: dtype)."""
        return self._group(f"{_name(dtype)}/grad/", "tol_" + _name(impl or dtype))

    def loss(self, dtype: Any = "float64") -> str:
        return str(self.arrays[f"{_name(dtype)}/loss/exact"][()])

    def save(self, path: str | os.PathLike, overwrite: bool = False) -> Path:
        """Write as .json, .npz or .h (by suffix), atomically; never clobber unless asked."""
        path = Path(path)
        write = _format(path)[0]
        atomic_write(path, lambda f: write(self, f), overwrite=overwrite)
        return path


def _name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _format(path: Path) -> tuple[Callable, Callable]:
    """(writer, reader) for the path's suffix (this module's names, looked up at each call)."""
    formats = {".json": (_write_json, _read_json), ".npz": (_write_npz, _read_npz),
               ".h": (_write_header, _read_header), ".hpp": (_write_header, _read_header)}
    if path.suffix.lower() not in formats:
        raise InputError(f"{path}: unknown fixture format {path.suffix!r}; use .json, .npz or .h")
    return formats[path.suffix.lower()]


def fixture(fn: Callable[..., Any], params: Mapping[str, Any], data: Mapping[str, Any] | None = None,
            *, digits: int = 30, dtypes: tuple = (np.float32, np.float64), name: str | None = None,
            description: str | None = None, model: Any = None) -> Fixture:
    """Build the fixture of `fn` at (params, data) rounded to each of `dtypes`.

    `model` (a refgrad.models.Model or its name) supplies the default name and description.
    """
    if isinstance(model, str):
        from refgrad.models import MODELS

        if model not in MODELS:
            raise InputError(f"no built-in model {model!r}; models: {sorted(MODELS)}")
        model = MODELS[model]
    dts = sorted({np.dtype(d) for d in dtypes}, key=lambda d: d.itemsize)
    if not dts or any(d.kind != "f" or d.name not in C_TYPES for d in dts):
        raise InputError(f"dtypes must be float16/float32/float64, got {list(dtypes)}")
    meta = {"format": FORMAT, "format_version": FORMAT_VERSION, "refgrad_version": _version(),
            "name": name or (model.name if model else getattr(fn, "__name__", "fixture")),
            "model": model.name if model else None,
            "description": description or (model.description if model else fn.__doc__ or ""),
            "digits": int(digits), "dtypes": [d.name for d in dts],
            "tolerance_rule": TOLERANCE_RULE, "layout": LAYOUT}
    arrays: dict[str, np.ndarray] = {}
    for D in dts:
        p = {str(k): np.asarray(v).astype(D) for k, v in params.items()}
        d = {str(k): np.asarray(v) if np.asarray(v).dtype.kind in "iub" else np.asarray(v).astype(D)
             for k, v in (data or {}).items()}
        graph = trace(fn, p, d)
        ref = reference(graph, digits=digits)
        c = D.name
        arrays.update({f"{c}/params/{k}": v for k, v in p.items()})
        arrays.update({f"{c}/data/{k}": v for k, v in d.items()})
        vd = min(ref.value_digits, digits)
        arrays[f"{c}/loss/exact"] = np.array(format_mpf(ref.value, vd))
        arrays[f"{c}/loss/digits"] = np.array(vd, dtype=np.int64)
        for T in dts:
            arrays[f"{c}/loss/{T.name}"] = np.array(ref.value_as(T), dtype=T)
        rounded = {T: ref.grad_as(T) for T in dts}
        wide = [T for T in dts if np.finfo(T).nmant >= np.finfo(D).nmant]
        scales = {T: baseline(graph, ref.grad, ref.value, T).scale for T in wide}
        for k in ref.grad:
            dig = np.where(ref.digits[k] < 0, -1, np.minimum(ref.digits[k], digits))
            strings = [format_mpf(v, int(n)) for v, n in zip(ref.grad[k].ravel(), dig.ravel(),
                                                             strict=True)]
            arrays[f"{c}/grad/{k}/exact"] = np.array(strings, dtype=str).reshape(dig.shape)
            arrays[f"{c}/grad/{k}/digits"] = dig.astype(np.int64)
            for T in dts:
                arrays[f"{c}/grad/{k}/{T.name}"] = rounded[T][k]
            for T in wide:
                r = rounded[T][k]
                half_ulp = np.spacing(np.abs(r)).astype(np.float64) / 2
                arrays[f"{c}/grad/{k}/tol_{T.name}"] = 4 * scales[T][k] + half_ulp
    return Fixture(meta, arrays)


def _version() -> str:
    import refgrad

    return str(getattr(refgrad, "__version__", "unknown"))


# --- reading ----------------------------------------------------------------------------------
def load_fixture(path: str | os.PathLike) -> Fixture:
    """Read a fixture written by Fixture.save; a clear InputError if it is corrupt or truncated."""
    path = Path(path)
    reader = _format(path)[1]
    if not path.is_file():
        raise InputError(f"{path}: no such fixture file")
    try:
        meta, arrays = reader(path)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    except (ValueError, KeyError, TypeError, IndexError, EOFError, OSError, zipfile.BadZipFile) as e:
        raise InputError(f"{path}: not a readable refgrad fixture, corrupt or truncated "
                         f"({type(e).__name__}: {e})") from None
    _validate(meta, arrays, path)
    return Fixture(meta, arrays)


def _validate(meta: dict, arrays: dict, path: Path) -> None:
    """Every case has every entry, with matching shapes: else name what is missing."""
    def fail(what: str) -> InputError:
        return InputError(f"{path}: {what}; the fixture is incomplete or corrupt")
    if meta.get("format") != FORMAT:
        raise fail(f"format is {meta.get('format')!r}, not {FORMAT!r}")
    if not isinstance(meta.get("format_version"), int) or meta["format_version"] > FORMAT_VERSION:
        raise fail(f"format_version {meta.get('format_version')!r} is not one this refgrad reads "
                   f"(<= {FORMAT_VERSION})")
    for field in ("name", "description", "refgrad_version", "digits", "dtypes"):
        if field not in meta:
            raise fail(f"metadata field {field!r} is missing")
    for c in meta["dtypes"]:
        need = [f"{c}/loss/exact", f"{c}/loss/digits"] + [f"{c}/loss/{t}" for t in meta["dtypes"]]
        names = {k.split("/")[2] for k in arrays if k.startswith(f"{c}/params/")}
        if not names:
            raise fail(f"case {c} has no params")
        for n in names:
            need += [f"{c}/grad/{n}/{s}" for s in ["exact", "digits", *meta["dtypes"]]]
        missing = [k for k in need if k not in arrays]
        if missing:
            raise fail(f"{len(missing)} entries are missing (first {missing[0]})")
        for k, a in arrays.items():
            if k.startswith(f"{c}/grad/"):
                n = k.split("/")[2]
                if a.shape != arrays[f"{c}/params/{n}"].shape:
                    raise fail(f"{k} has shape {a.shape}, param {n} has "
                               f"{arrays[f'{c}/params/{n}'].shape}")
