"""The three formats on their own: special float values survive every round trip bit for bit."""

import numpy as np
import pytest

from refgrad.report.fixture_formats import (
    read_header,
    read_json,
    read_npz,
    write_header,
    write_json,
    write_npz,
)
from refgrad.report.fixtures import Fixture

FORMATS = {"json": (write_json, read_json), "npz": (write_npz, read_npz),
           "h": (write_header, read_header)}
ODD = {  # values a decimal or a naive C literal would get wrong
    "float64/grad/X/float64": np.array([-0.0, 5e-324, 0.1, 1 / 3]),
    "float64/grad/X/float32": np.array([-0.0, 1e-45, 3.4028235e38, 1 / 3], np.float32),
    "float64/grad/X/float16": np.array([[6e-8, -65504.0], [0.1, 1 / 3]], np.float16),
    "float64/grad/X/digits": np.array([-1, 2**40, 0, 7], np.int64),
    "float64/grad/X/exact": np.array(['"quoted" \\ */ ??/', "1.5e-7"]),
    "float64/loss/exact": np.array("0.25"),
}
INF = {  # e.g. a large gradient correctly rounded to float16
    "float64/grad/X/float64": np.array([np.inf, -np.inf]),
    "float64/grad/X/float16": np.array([np.inf, -np.inf], np.float16),
    "float64/grad/X/float32": np.array([np.inf, -np.inf], np.float32),
}
META = {"name": "odd", "description": "special values", "refgrad_version": "test",
        "format_version": 1}


def round_trip(fmt: str, arrays: dict, tmp_path) -> None:
    write, read = FORMATS[fmt]
    path = tmp_path / f"odd.{fmt}"
    with open(path, "wb") as f:
        write(Fixture(META, arrays), f)
    meta, back = read(path)
    assert {k: meta[k] for k in META} == META and set(back) == set(arrays)
    for k, a in arrays.items():
        b = back[k]
        assert b.dtype == a.dtype and b.shape == a.shape, k
        if a.dtype.kind == "f":
            assert a.tobytes() == b.tobytes(), k  # -0.0 and subnormals included
        else:
            assert (a == b).all(), k


@pytest.mark.parametrize("fmt", FORMATS)
def test_special_values_round_trip_bit_for_bit(fmt, tmp_path):
    round_trip(fmt, ODD, tmp_path)


@pytest.mark.parametrize("fmt", [
    "json", "npz", "h"])
def test_infinities_round_trip(fmt, tmp_path):
    round_trip(fmt, INF, tmp_path)
