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

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from refgrad.errors import InputError
from refgrad.reference import format_mpf, reference
from refgrad.score.baseline import baseline
from refgrad.trace.tracer import trace

FORMAT = "refgrad-fixture"
FORMAT_VERSION = 1
TOLERANCE_RULE = ("tol_T = 4*scale_T + ulp_T(exact rounded to T)/2, scale_T = u_T*depth*|grad|abs "
                  "(refgrad error scale); a correct T implementation has |yours - rounded_T| <= tol_T")
LAYOUT = ("row-major (C order); key D/params/X holds param X rounded to input dtype D; grads "
          "under D/grad/X are the exact gradient at exactly those inputs")
SCHEMA = Path(__file__).with_name("fixture.schema.json")  # JSON Schema of the .json format
_C_TYPES = {"float32": "float", "float64": "double", "float16": "double"}


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
        _atomic_write(path, lambda f: write(self, f), overwrite)
        return path


def _name(dtype: Any) -> str:
    return np.dtype(dtype).name


def _format(path: Path) -> tuple[Callable, Callable]:
    """(writer, reader) for the path's suffix."""
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
    if not dts or any(d.kind != "f" or d.name not in _C_TYPES for d in dts):
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


# --- writing ----------------------------------------------------------------------------------
def _atomic_write(path: Path, write: Callable[[Any], None], overwrite: bool) -> None:
    """Temp file in the same directory, fsync, then rename (a hard link when not clobbering)."""
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: directory {path.parent} does not exist")
    clash = FileExistsError(f"{path} already exists; pass overwrite=True to replace it")
    if path.exists() and not overwrite:
        raise clash
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        if overwrite:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)  # fails if the file appeared meanwhile: never clobbers
        except FileExistsError:
            raise clash from None
        except OSError:  # no hard links on this file system
            os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _hex(x: float) -> str:
    """C99 hex float without trailing zeros (0x1.8p+1): exact, and read by strtod/float.fromhex."""
    m, _, e = float(x).hex().partition("p")
    return (m.rstrip("0").rstrip(".") if "." in m else m) + "p" + e


def _encode(a: np.ndarray) -> dict[str, Any]:
    """An array as JSON: floats as hex (bit-exact) and as decimals (for people and JSON readers)."""
    flat = a.reshape(-1).tolist()
    if a.dtype.kind == "f":
        return {"dtype": a.dtype.name, "shape": list(a.shape), "hex": [_hex(x) for x in flat],
                "values": [x if np.isfinite(x) else str(x) for x in flat]}
    return {"dtype": "str" if a.dtype.kind == "U" else a.dtype.name, "shape": list(a.shape),
            "values": flat}


def _write_json(fx: Fixture, f: Any) -> None:
    """The reference format: metadata, then cases nested by key; one line per array."""
    cases: dict[str, Any] = {}
    for key, a in fx.arrays.items():
        *parents, leaf = key.split("/")
        node = cases
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = a
    doc = {**fx.meta, "cases": cases}

    def dump(o: Any, ind: str) -> str:  # one line per array, nested objects indented
        if isinstance(o, np.ndarray):
            return json.dumps(_encode(o), separators=(", ", ": "))
        if not isinstance(o, dict):
            return json.dumps(o, ensure_ascii=False)
        items = [f'{ind}  {json.dumps(k)}: {dump(v, ind + "  ")}' for k, v in o.items()]
        return "{\n" + ",\n".join(items) + f"\n{ind}}}"

    f.write((dump(doc, "") + "\n").encode())


def _write_npz(fx: Fixture, f: Any) -> None:
    """The same keys as arrays (strings as unicode arrays, no pickles); metadata as JSON."""
    np.savez_compressed(f, __meta__=np.array(json.dumps(fx.meta)), **fx.arrays)


def _c_ident(s: str) -> str:
    """Any name as C identifier characters."""
    return re.sub(r"\W", "_", s, flags=re.ASCII)


def _c_value(x: Any, kind: str, ctype: str) -> str:
    """One C literal: hex floats (suffix f for float), integers, or an escaped string."""
    if kind == "U":
        return json.dumps(str(x), ensure_ascii=True)
    if kind != "f":
        return str(int(x))
    if not np.isfinite(x):
        return ("-" if x < 0 else "") + ("HUGE_VALF" if ctype == "float" else "HUGE_VAL")
    return _hex(x) + ("f" if ctype == "float" else "")


def _write_header(fx: Fixture, f: Any) -> None:
    """One self-contained C99/C++ header: `static const` arrays named <name>_<key with _>,
    each with its shape; the metadata as one JSON comment line so the header reads back."""
    prefix = re.sub(r"^(?=\d)|^$", "fx_", _c_ident(fx.name).lower())  # a valid C identifier
    idents = {k: f"{prefix}_{_c_ident(k.replace('/', '_'))}" for k in fx.arrays}
    if len(set(idents.values())) != len(idents):
        raise InputError("two tensor names map to the same C identifier; rename one")
    meta = {**fx.meta, "arrays": {k: [idents[k], a.dtype.str, list(a.shape)]
                                  for k, a in fx.arrays.items()}}
    guard = f"REFGRAD_FIXTURE_{prefix.upper()}_H"
    meta_line = json.dumps(meta).replace("*/", "*\\/").replace("?", "\\u003f")  # no trigraphs
    desc = "\n".join(" * " + ln for ln in fx.meta["description"].replace("*/", "* /")
                     .replace("??", "? ?").splitlines())
    out = [f"/* refgrad fixture {fx.name!r}: generated by refgrad {fx.meta['refgrad_version']} "
           f"(format {FORMAT_VERSION}); do not edit.\n *\n{desc}\n *\n * Layout: {LAYOUT}.\n"
           f" * Tolerances: {TOLERANCE_RULE}.\n * Each array is flat (sizeof(a)/sizeof(a[0]) "
           "elements) with its shape in <name>_shape; float values are C99 hex floats (bit-exact)."
           f"\n * refgrad-meta: {meta_line}\n */",
           f"#ifndef {guard}\n#define {guard}\n#include <math.h>\n#ifndef REFGRAD_UNUSED\n"
           "#if defined(__GNUC__)\n#define REFGRAD_UNUSED __attribute__((unused))\n#else\n"
           "#define REFGRAD_UNUSED\n#endif\n#endif\n"]
    for k, a in fx.arrays.items():
        kind, name = a.dtype.kind, idents[k]
        small = kind in "iub" and (a.size == 0 or abs(a).max() < 2**31)
        ctype = {"f": _C_TYPES.get(a.dtype.name, "double"), "U": "char *const"}.get(
            kind, "int" if small else "long long")
        vals = [_c_value(x, kind, ctype) for x in a.reshape(-1).tolist()]
        if a.ndim == 0 and kind == "U":
            out.append(f"static const char {name}[] REFGRAD_UNUSED = {vals[0]};")
        elif a.ndim == 0:
            out.append(f"static const {ctype} {name} REFGRAD_UNUSED = {vals[0]};")
        else:
            body = ",\n  ".join(", ".join(vals[i:i + 8]) for i in range(0, len(vals), 8)) or "0"
            out.append(f"static const int {name}_shape[{a.ndim}] REFGRAD_UNUSED = "
                       f"{{{', '.join(map(str, a.shape))}}};\n"
                       f"static const {ctype} {name}[{max(a.size, 1)}] REFGRAD_UNUSED = {{\n  {body}}};")
    out.append(f"#endif /* {guard} */\n")
    f.write("\n".join(out).encode())


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


def _decode(o: Any, key: str) -> np.ndarray:
    """A JSON array object back to numpy (floats from hex, checked against the decimals)."""
    if not isinstance(o, dict) or "dtype" not in o or "shape" not in o:
        raise InputError(f"{key} is not an array object (dtype, shape, hex/values)")
    dt, shape = o["dtype"], tuple(o["shape"])
    if dt in _C_TYPES:
        a = np.array([float.fromhex(h) for h in o["hex"]], dtype=dt)
        vals = np.array([float(v) for v in o["values"]], dtype=dt)
        if vals.shape != a.shape or not np.array_equal(a, vals, equal_nan=True):
            raise InputError(f"{key}: its hex and decimal values disagree")
    else:
        a = np.array(o["values"], dtype=str if dt == "str" else dt)
    if a.size != int(np.prod(shape, dtype=np.int64)):
        raise InputError(f"{key} has {a.size} values for shape {list(shape)}")
    return a.reshape(shape)


def _read_json(path: Path) -> tuple[dict, dict]:
    """(metadata, arrays by key) from the JSON format."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InputError(f"not valid JSON ({e.msg} at line {e.lineno}, column {e.colno}): the "
                         "file is corrupt or truncated") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("cases"), dict):
        raise InputError("not a refgrad fixture (no 'cases' object)")
    arrays: dict[str, np.ndarray] = {}

    def walk(node: Any, key: str) -> None:
        if isinstance(node, dict) and "dtype" not in node:
            for k, v in node.items():
                walk(v, f"{key}/{k}" if key else k)
        else:
            arrays[key] = _decode(node, key)

    walk(doc.pop("cases"), "")
    return doc, arrays


def _read_npz(path: Path) -> tuple[dict, dict]:
    """(metadata, arrays by key) from the NPZ format."""
    with np.load(path, allow_pickle=False) as z:
        if "__meta__" not in z.files:
            raise InputError("not a refgrad fixture (no __meta__ entry)")
        arrays = {k: z[k] for k in z.files}
    return json.loads(str(arrays.pop("__meta__")[()])), arrays


def _read_header(path: Path) -> tuple[dict, dict]:
    """(metadata, arrays by key) from our own header: the meta line names each array."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r"refgrad-meta: (\{.*\})\n", text)
    if m is None:
        raise InputError("not a refgrad fixture header (no refgrad-meta line)")
    meta = json.loads(m.group(1))
    bodies = {d.group(1): d.group(2) for d in re.finditer(
        r"(\w+)(?:\[\d*\])? REFGRAD_UNUSED = (\{[^}]*\}|[^;{]*);", text)}
    arrays = {}
    for key, (ident, dt, shape) in meta.pop("arrays").items():
        if ident not in bodies:
            raise InputError(f"array {ident} ({key}) is missing")
        body, dtype = bodies[ident].strip("{} \n"), np.dtype(dt)
        if dtype.kind == "U":
            vals: list = json.loads(f"[{body}]")
        else:
            vals = [_c_float(t) if dtype.kind == "f" else int(t) for t in body.split(",")]
        size = int(np.prod(shape, dtype=np.int64))
        if len(vals) != max(size, 1):
            raise InputError(f"array {ident} ({key}) has {len(vals)} values for shape {shape}")
        arrays[key] = np.array(vals[:size], dtype=dtype).reshape(shape)
    return meta, arrays


def _c_float(t: str) -> float:
    """A C float literal as written by _c_value."""
    t = t.strip()
    sign = -1.0 if t.startswith("-") else 1.0
    if t.lstrip("-") in ("HUGE_VAL", "HUGE_VALF"):
        return sign * np.inf
    return float.fromhex(t[:-1] if t.endswith("f") else t)


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
