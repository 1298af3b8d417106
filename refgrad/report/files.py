"""Writing files atomically: a reader sees the old file or the whole new one, never half of
one, and an existing file is replaced only when the caller says so."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from refgrad.errors import InputError


class PathExistsError(InputError, FileExistsError):
    """The file exists and overwriting was not asked for (also a FileExistsError for callers
    that catch the OS's own error)."""


def atomic_write(path: str | os.PathLike, write: Callable[[IO[bytes]], object], *,
                 overwrite: bool) -> None:
    """Call `write(f)` on a temp file in path's directory, fsync, then rename it to `path`
    (a hard link when not overwriting, so a file that appears meanwhile is never clobbered)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: directory {path.parent} does not exist")
    clash = PathExistsError(f"{path} already exists; pass overwrite=True to replace it")
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
