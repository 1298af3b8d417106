"""refgrad.io.read_arrays: the arrays a user hands the CLI, from directories and archives."""

import json

import numpy as np
import pytest

from refgrad.errors import InputError
from refgrad.io import read_arrays


def _write_text(path, values, fmt="%.9g"):
    """What a C++ program writes with printf("%.9g\\n", x[i]): one value per line."""
    with open(path, "w", encoding="utf-8") as f:
        for v in np.asarray(values).reshape(-1):
            f.write(fmt % v + "\n")


@pytest.fixture
def arrays():
    rng = np.random.default_rng(7)
    return {
        "W": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.standard_normal(4).astype(np.float32),
        "x": rng.standard_normal((2, 3)),
        "k": rng.standard_normal((2, 1, 2, 2)),
    }


# --- what can be read ---------------------------------------------------------------------
def test_directory_of_mixed_files(tmp_path, arrays):
    d = tmp_path / "params"
    d.mkdir()
    _write_text(d / "W.txt", arrays["W"])
    (d / "b.csv").write_text(",".join(f"{v:.9g}" for v in arrays["b"]) + "\n")
    np.save(d / "x.npy", arrays["x"])
    (d / "k.json").write_text(json.dumps(arrays["k"].tolist()))
    (d / "README.md").write_text("not a tensor")  # other files are ignored
    (d / ".W.txt").write_text("hidden, ignored")
    shapes = {k: v.shape for k, v in arrays.items()}
    out = read_arrays(str(d), shapes)
    assert set(out) == set(arrays)
    for k, v in arrays.items():
        assert out[k].shape == v.shape, k
        assert out[k].dtype == np.float64
        # %.9g round-trips float32 exactly; .npy and JSON round-trip float64 exactly
        np.testing.assert_array_equal(out[k].astype(v.dtype), v, err_msg=k)


def test_text_without_shapes_is_flat_and_csv_rows_are_row_major(tmp_path):
    (tmp_path / "A.csv").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "B.txt").write_text("  1.5e-3 \t -2\n\n7  \r\n")
    out = read_arrays(str(tmp_path))
    np.testing.assert_array_equal(out["A"], [1, 2, 3, 4, 5, 6])
    np.testing.assert_array_equal(out["B"], [1.5e-3, -2, 7])
    out = read_arrays(str(tmp_path), {"A": (2, 3), "B": (3, 1)})
    np.testing.assert_array_equal(out["A"], [[1, 2, 3], [4, 5, 6]])
    assert out["B"].shape == (3, 1)


def test_npz_archive(tmp_path, arrays):
    path = tmp_path / "params.npz"
    np.savez(path, **arrays)
    out = read_arrays(str(path), {k: v.shape for k, v in arrays.items()})
    for k, v in arrays.items():
        np.testing.assert_array_equal(out[k], v.astype(np.float64))


def test_npz_is_reshaped_to_known_shapes(tmp_path, arrays):
    path = tmp_path / "flat.npz"
    np.savez(path, W=arrays["W"].reshape(-1))
    out = read_arrays(str(path), {"W": (3, 4)})
    np.testing.assert_array_equal(out["W"], arrays["W"])


def test_json_archive(tmp_path, arrays):
    path = tmp_path / "grads.json"
    path.write_text(json.dumps({"W": arrays["W"].reshape(-1).tolist(), "x": arrays["x"].tolist()}))
    out = read_arrays(str(path), {"W": (3, 4), "x": (2, 3)})
    np.testing.assert_array_equal(out["W"], arrays["W"].astype(np.float64))
    np.testing.assert_array_equal(out["x"], arrays["x"])


@pytest.mark.parametrize("suffix", [".txt", ".csv", ".npy", ".json"])
def test_single_file_is_one_tensor_named_after_it(tmp_path, suffix):
    values = np.arange(6, dtype=np.float64) / 4
    path = tmp_path / f"Tg{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    elif suffix == ".json":
        path.write_text(json.dumps(values.tolist()))
    else:
        _write_text(path, values, "%.17g")
    out = read_arrays(str(path), {"Tg": (2, 3)})
    assert list(out) == ["Tg"]
    np.testing.assert_array_equal(out["Tg"], values.reshape(2, 3))


def test_scalar_tensor(tmp_path):
    (tmp_path / "s.txt").write_text("0.25\n")
    out = read_arrays(str(tmp_path), {"s": ()})
    assert out["s"].shape == () and out["s"] == 0.25


def test_int_labels_are_converted(tmp_path):
    (tmp_path / "labels.txt").write_text("3\n0\n4.0\n1\n")
    (tmp_path / "xs.txt").write_text("1\n2\n")
    out = read_arrays(str(tmp_path), {"labels": (4,), "xs": (2,)}, kind="data", ints=("labels",))
    assert out["labels"].dtype == np.int64
    np.testing.assert_array_equal(out["labels"], [3, 0, 4, 1])
    assert out["xs"].dtype == np.float64  # only the named tensors become integers


def test_int_labels_from_npy(tmp_path):
    np.save(tmp_path / "labels.npy", np.array([2, 1], dtype=np.int32))
    out = read_arrays(str(tmp_path), {"labels": (2,)}, ints=("labels",))
    assert out["labels"].dtype == np.int64
    np.testing.assert_array_equal(out["labels"], [2, 1])


# --- errors: each names the path and the tensor --------------------------------------------
def _error(path, *args, **kw) -> str:
    with pytest.raises(InputError) as e:
        read_arrays(str(path), *args, **kw)
    msg = str(e.value)
    assert "\n" not in msg
    return msg


def test_missing_path(tmp_path):
    msg = _error(tmp_path / "nope")
    assert "nope" in msg and "no such file or directory" in msg


def test_empty_directory(tmp_path):
    msg = _error(tmp_path)
    assert str(tmp_path) in msg and "no .npy/.txt/.csv/.json files" in msg


def test_unknown_and_missing_names(tmp_path):
    (tmp_path / "Wout.txt").write_text("1\n")
    (tmp_path / "b.txt").write_text("1\n")
    msg = _error(tmp_path, {"W": (1,), "b": (1,)}, kind="params")
    assert str(tmp_path) in msg and msg.startswith("params in ")
    assert "unknown ['Wout']" in msg and "missing ['W']" in msg
    assert "expected: W, b" in msg


def test_only_missing_names(tmp_path):
    (tmp_path / "b.txt").write_text("1\n")
    msg = _error(tmp_path, {"W": (1,), "b": (1,)}, kind="analytic gradient")
    assert "missing ['W']" in msg and "unknown" not in msg and "analytic gradient" in msg


def test_wrong_size(tmp_path):
    _write_text(tmp_path / "X.txt", np.arange(63))
    msg = _error(tmp_path, {"X": (8, 8)})
    assert "'X'" in msg and str(tmp_path) in msg
    assert "63 values" in msg and "(8, 8)" in msg and "64 values" in msg


def test_unreadable_text_names_file_and_line(tmp_path):
    (tmp_path / "X.txt").write_text("1.0\n2.0\n3.0\nabc\n5.0\n")
    msg = _error(tmp_path, {"X": (5,)})
    assert f"{tmp_path / 'X.txt'}:4:" in msg and "'abc'" in msg and "not a number" in msg


def test_unreadable_text_line_is_the_token_line(tmp_path):
    (tmp_path / "X.txt").write_text("1e-3\n2\ne\n")
    assert f"{tmp_path / 'X.txt'}:3:" in _error(tmp_path)


def test_binary_text_file(tmp_path):
    (tmp_path / "X.txt").write_bytes(b"\xff\xfe\x001\n")
    assert "X.txt" in _error(tmp_path)


def test_non_integer_labels(tmp_path):
    (tmp_path / "labels.txt").write_text("1\n2.5\n")
    msg = _error(tmp_path, {"labels": (2,)}, kind="data", ints=("labels",))
    assert "data 'labels'" in msg and str(tmp_path) in msg and "integer labels" in msg


def test_infinite_label(tmp_path):
    (tmp_path / "labels.txt").write_text("1\ninf\n")
    msg = _error(tmp_path, {"labels": (2,)}, kind="data", ints=("labels",))
    assert "labels" in msg


def test_bad_npy(tmp_path):
    (tmp_path / "X.npy").write_text("1\n2\n")
    msg = _error(tmp_path)
    assert "X.npy" in msg and "as .npy" in msg


def test_truncated_npy(tmp_path):
    np.save(tmp_path / "full.npy", np.arange(10.0))
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "X.npy").write_bytes((tmp_path / "full.npy").read_bytes()[:60])
    assert "X.npy" in _error(tmp_path / "d")


def test_truncated_npz(tmp_path):
    np.savez(tmp_path / "full.npz", X=np.arange(10.0))
    (tmp_path / "bad.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:100])
    assert "bad.npz" in _error(tmp_path / "bad.npz")


def test_bad_json(tmp_path):
    (tmp_path / "g.json").write_text("{bad")
    msg = _error(tmp_path / "g.json")
    assert "g.json" in msg and "JSON" in msg


@pytest.mark.parametrize("content", [[[1, 2], [3]], {"a": 1}, ["x", "y"]])
def test_json_not_numbers(tmp_path, content):
    (tmp_path / "g.json").write_text(json.dumps({"W": content}))
    msg = _error(tmp_path / "g.json", kind="numeric gradient")
    assert "numeric gradient 'W'" in msg and "g.json" in msg and "not an array of numbers" in msg


def test_two_files_for_one_tensor(tmp_path):
    (tmp_path / "X.txt").write_text("1\n")
    np.save(tmp_path / "X.npy", np.ones(1))
    msg = _error(tmp_path)
    assert "two files for tensor 'X'" in msg and str(tmp_path) in msg


def test_unsupported_single_file(tmp_path):
    (tmp_path / "X.dat").write_text("1\n")
    msg = _error(tmp_path / "X.dat")
    assert "X.dat" in msg and "unsupported file type" in msg
