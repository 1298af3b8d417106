"""atomic_write: whole files or none, no clobbering unless asked, clear errors, no temp files left."""

import os

import pytest

from refgrad.errors import InputError
from refgrad.report.files import atomic_write


def _bytes(data):
    return lambda f: f.write(data)


def test_writes_and_replaces_only_when_asked(tmp_path):
    path = tmp_path / "out.bin"
    atomic_write(path, _bytes(b"one"), overwrite=False)
    assert path.read_bytes() == b"one"
    with pytest.raises(InputError, match=f"{path} already exists") as e:
        atomic_write(str(path), _bytes(b"two"), overwrite=False)
    assert isinstance(e.value, FileExistsError)  # what callers of Fixture.save caught before
    assert path.read_bytes() == b"one"
    atomic_write(path, _bytes(b"two"), overwrite=True)
    assert path.read_bytes() == b"two" and os.listdir(tmp_path) == ["out.bin"]


def test_a_missing_directory_is_named(tmp_path):
    with pytest.raises(InputError, match=f"cannot write .*{tmp_path / 'no'} does not exist"):
        atomic_write(tmp_path / "no" / "out.bin", _bytes(b""), overwrite=True)


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_failing_writer_leaves_no_trace(tmp_path, overwrite):
    path = tmp_path / "out.bin"
    if overwrite:
        path.write_bytes(b"old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(path, fail, overwrite=overwrite)
    assert os.listdir(tmp_path) == (["out.bin"] if overwrite else [])
    assert not overwrite or path.read_bytes() == b"old"


def test_a_file_that_appears_while_writing_is_kept(tmp_path):
    path = tmp_path / "out.bin"

    def racing(f):
        path.write_bytes(b"theirs")
        f.write(b"ours")

    with pytest.raises(InputError, match="already exists"):
        atomic_write(path, racing, overwrite=False)
    assert path.read_bytes() == b"theirs" and os.listdir(tmp_path) == ["out.bin"]
