"""Reading the arrays a user hands the CLI: a directory with one file per tensor (named after
it: X.txt, Tg.npy, ...) or one archive keyed by names (.npz, .json).

.txt (whitespace-separated) and .csv hold the values in row-major order — exactly what a C++
program writes with printf("%.9g\\n", x[i]) — and are reshaped to the tensor's shape when it is
known (from the model, or from the params for gradients).
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Mapping
from typing import Any

import numpy as np

from refgrad.errors import InputError

SUFFIXES = (".npy", ".txt", ".csv", ".json")


def _read_text(path: str) -> np.ndarray:
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text file (not UTF-8); write numbers as text or .npy") from None
    except OSError as e:
        raise InputError(f"cannot read {path}: {e.strerror}") from None
    values = []
    for lineno, line in enumerate(lines, 1):
        for tok in line.replace(",", " ").split():
            try:
                values.append(float(tok))
            except ValueError:
                raise InputError(f"{path}:{lineno}: {tok!r} is not a number") from None
    return np.array(values, dtype=np.float64)


def _read_file(path: str) -> Any:
    ext = os.path.splitext(path)[1].lower()
    if ext in (".txt", ".csv"):
        return _read_text(path)
    if ext == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise InputError(f"cannot read {path} as .npy: {e}") from None
    if ext == ".json":
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as e:
            raise InputError(f"cannot read {path} as JSON: {e}") from None
    raise InputError(f"{path}: unsupported file type {ext!r} (use .npy, .npz, .json, .csv or .txt)")


def _collect(path: str) -> dict[str, Any]:
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file or directory")
    if os.path.isdir(path):
        out = {}
        for fname in sorted(os.listdir(path)):
            stem, ext = os.path.splitext(fname)
            if ext.lower() in SUFFIXES and not stem.startswith("."):
                if stem in out:
                    raise InputError(f"{path}: two files for tensor {stem!r}")
                out[stem] = _read_file(os.path.join(path, fname))
        if not out:
            raise InputError(f"{path}: no .npy/.txt/.csv/.json files in this directory")
        return out
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, AttributeError) as e:
            raise InputError(f"cannot read {path} as .npz: {e or 'not a zip archive'}") from None
    content = _read_file(path)
    if ext == ".json" and isinstance(content, dict):
        return content
    return {os.path.splitext(os.path.basename(path))[0]: content}


def read_arrays(path: str, shapes: Mapping[str, tuple[int, ...]] | None = None, *,
                kind: str = "params", ints: tuple[str, ...] = ()) -> dict[str, np.ndarray]:
    """Arrays by name from `path`; with `shapes`, names must match and values are reshaped."""
    raw = _collect(path)
    if shapes is not None:
        unknown, missing = sorted(set(raw) - set(shapes)), sorted(set(shapes) - set(raw))
        if unknown or missing:
            parts = [f"unknown {unknown}" if unknown else "", f"missing {missing}" if missing else ""]
            raise InputError(f"{kind} in {path}: " + "; ".join(p for p in parts if p)
                             + f" (expected: {', '.join(shapes)})")
    out = {}
    for name, v in raw.items():
        try:
            arr = np.asarray(v)
            if arr.dtype.kind not in "iu" or name not in ints and shapes is not None:
                arr = arr.astype(np.float64)  # integer files stay integer (labels) for own models
        except (TypeError, ValueError):
            raise InputError(f"{kind} {name!r} in {path}: not an array of numbers") from None
        if arr.dtype.kind not in "iuf":
            raise InputError(f"{kind} {name!r} in {path}: not an array of real numbers")
        if shapes is not None:
            shape = tuple(shapes[name])
            size = int(np.prod(shape, dtype=np.int64))
            if arr.size != size:
                raise InputError(f"{kind} {name!r} in {path}: {arr.size} values, but the tensor "
                                 f"has shape {shape} ({size} values)")
            arr = arr.reshape(shape)
        if name in ints:
            if not (np.all(np.isfinite(arr)) and np.all(arr == np.round(arr))):
                raise InputError(f"{kind} {name!r} in {path}: expected integer labels")
            arr = arr.astype(np.int64)
        out[name] = arr
    return out
