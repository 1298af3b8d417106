"""Fixtures: contents, tolerances, bit-exact round trips, atomic no-clobber writes, corrupt files,
and a C/C++ header that compiles and reads back bit for bit."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import refgrad as rg
from refgrad.differentiate.reverse import backward
from refgrad.errors import InputError
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS
from refgrad.report import fixtures
from refgrad.report.fixtures import SCHEMA, Fixture, fixture, load_fixture
from refgrad.score.baseline import baseline

FORMATS = ("json", "npz", "h")
_CACHE: dict[str, Fixture] = {}


def build(name: str) -> Fixture:
    """One fixture per seed model per test session; mlp only in float64 (its reference is the
    slow part: float32 is covered by the smaller models)."""
    if name not in _CACHE:
        m = MODELS[name]
        dtypes = (np.float64,) if name == "mlp" else (np.float32, np.float64)
        _CACHE[name] = fixture(m.loss, *m.example(0), dtypes=dtypes, model=m)
    return _CACHE[name]


def same(a: Fixture, b: Fixture) -> None:
    assert a.meta == b.meta
    assert set(a.arrays) == set(b.arrays)
    for k, x in a.arrays.items():
        y = b.arrays[k]
        assert x.shape == y.shape, k
        if x.dtype.kind == "U":
            assert y.dtype.kind == "U" and (x == y).all(), k  # identical decimal strings
        else:
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes(), k  # bit-identical


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(MODELS))
def test_round_trip_is_bit_exact_for_every_seed_model(name, fmt, tmp_path):
    fx = build(name)
    path = fx.save(tmp_path / f"{name}.{fmt}")
    same(fx, load_fixture(path))
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left behind


def test_contents_mse():
    fx = build("mse")
    m = MODELS["mse"]
    p, d = m.example(0)
    assert fx.name == "mse" and fx.meta["model"] == "mse" and "(X − T)/(r·n)" in fx.meta["description"]
    assert fx.meta["refgrad_version"] == rg.__version__ and fx.meta["format_version"] == 1
    x32 = fx.params("float32")["X"]
    assert x32.dtype == np.float32 and np.array_equal(x32, p["X"].astype(np.float32))
    # the float32 case is the exact gradient at the float32 inputs, not at the float64 ones
    ref32 = rg.reference(m.loss, fx.params("float32"), fx.data("float32"))
    assert np.array_equal(fx.grad("float32")["X"], ref32.grad_as(np.float32)["X"])
    assert np.array_equal(fx.grad("float32", rounded_to="float64")["X"], ref32.grad_as(np.float64)["X"])
    assert not np.array_equal(fx.grad("float32", "float64")["X"], fx.grad("float64")["X"])
    # the decimal strings carry the certified digits and round to the stored floats
    exact = fx.exact("float64")["X"]
    digits = fx.arrays["float64/grad/X/digits"]
    significant = [len(s.lstrip("-").split("e")[0].replace(".", "").lstrip("0")) for s in exact.ravel()]
    assert digits.min() == 30 and significant == digits.ravel().tolist()
    floats = np.array([float(s) for s in exact.ravel()])
    rounded = fx.grad("float64")["X"].ravel()
    tie = floats != rounded  # (x − t)/64 is often exactly halfway between doubles: ties to even
    assert (np.abs(floats - rounded)[tie] == np.spacing(np.abs(rounded))[tie]).all()
    assert (rounded[tie].view(np.int64) & 1 == 0).all() and 0 < tie.sum() < tie.size
    assert float(fx.loss("float64")) == float(fx.arrays["float64/loss/float64"])
    # a float64 case holds no float32 tolerance: float32 code cannot take its inputs
    assert "float64/grad/X/tol_float32" not in fx.arrays


@pytest.mark.parametrize("name", ["mse", "lstm_classifier", "cnn"])
def test_tolerances_follow_the_rule_and_separate_correct_from_buggy(name):
    fx = build(name)
    m = MODELS[name]
    for case, impls in (("float32", ("float32", "float64")), ("float64", ("float64",))):
        graph = rg.trace(m.loss, fx.params(case), fx.data(case))
        ref = rg.reference(graph)
        for impl in impls:
            bl = baseline(graph, ref.grad, ref.value, impl)
            tol, rounded = fx.tolerance(case, impl), fx.grad(case, rounded_to=impl)
            for k, t in tol.items():
                half_ulp = np.spacing(np.abs(rounded[k])).astype(np.float64) / 2
                assert np.array_equal(t, 4 * bl.scale[k] + half_ulp)  # the documented rule
            # a correct implementation in `impl` (refgrad's own float backprop) passes ...
            b = get_backend(impl)
            ours = backward(graph, b, forward(graph, b))
            for k in tol:
                err = np.abs(ours[k].astype(np.float64) - rounded[k].astype(np.float64))
                assert (err <= tol[k]).all(), (case, impl, k)
            # ... and the first story's bug (a factor 1/T) does not
            err = [np.abs(rounded[k].astype(np.float64) * 0.9 - rounded[k]) > tol[k] for k in tol]
            assert any(e.any() for e in err)


def test_json_matches_the_shipped_schema(tmp_path):
    schema = json.loads(SCHEMA.read_text())
    for name in ("mse", "lstm_classifier"):
        doc = json.loads(build(name).save(tmp_path / f"{name}.json").read_text())
        validate(doc, schema)
    doc["cases"]["float32"]["grad"]["weight_ih"]["float32"]["hex"][0] = "1.5"
    with pytest.raises(AssertionError, match="pattern"):
        validate(doc, schema)


def test_no_clobber_and_overwrite(tmp_path):
    fx = build("mse")
    path = fx.save(tmp_path / "case.json")
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match=re.escape(str(path))):
        fx.save(path)
    assert path.read_text() == "keep me"
    fx.save(path, overwrite=True)
    same(fx, load_fixture(path))
    with pytest.raises(InputError, match="does not exist"):
        fx.save(tmp_path / "no" / "case.json")
    with pytest.raises(InputError, match="unknown fixture format"):
        fx.save(tmp_path / "case.csv")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.json"]


def test_no_clobber_even_when_the_file_appears_while_writing(tmp_path, monkeypatch):
    path = tmp_path / "case.json"
    real = fixtures._write_json

    def racing(fx, f):  # another process creates the file between our check and our rename
        path.write_text("theirs")
        real(fx, f)

    monkeypatch.setattr(fixtures, "_write_json", racing)
    with pytest.raises(FileExistsError, match="already exists"):
        build("mse").save(path)
    assert path.read_text() == "theirs" and [p.name for p in tmp_path.iterdir()] == ["case.json"]


def test_header_names_and_comments_are_safe_c(tmp_path):
    fx = build("mse")
    odd = Fixture({**fx.meta, "name": "3-layer net", "description": "a ??/ trigraph */ end"},
                  fx.arrays)
    assert "fx_3_layer_net_float64_grad_X_float64[64]" in odd.save(tmp_path / "o.h").read_text()
    same(odd, load_fixture(tmp_path / "o.h"))
    if shutil.which("gcc"):
        (tmp_path / "m.c").write_text('#include "o.h"\nint main(void) { return 0; }\n')
        subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-fsyntax-only", "m.c"],
                       cwd=tmp_path, check=True, capture_output=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_truncated_files_give_a_clear_error(fmt, tmp_path):
    path = build("mse").save(tmp_path / f"case.{fmt}")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=re.escape(str(path))) as e:
        load_fixture(path)
    assert re.search("corrupt|truncated|missing", str(e.value))


def test_corrupt_contents_are_named(tmp_path):
    path = build("mse").save(tmp_path / "case.json")
    good = json.loads(path.read_text())
    bad = json.loads(path.read_text())
    bad["cases"]["float64"]["grad"]["X"]["float64"]["hex"][3] = "0x1p+0"
    path.write_text(json.dumps(bad))
    with pytest.raises(InputError, match="float64/grad/X/float64: its hex and decimal values disagree"):
        load_fixture(path)
    del good["cases"]["float32"]["grad"]["X"]["digits"]
    path.write_text(json.dumps(good))
    with pytest.raises(InputError, match="float32/grad/X/digits"):
        load_fixture(path)
    path.write_text('{"hello": 1}')
    with pytest.raises(InputError, match="not a refgrad fixture"):
        load_fixture(path)
    with pytest.raises(InputError, match="no such fixture file"):
        load_fixture(tmp_path / "missing.npz")


def compile_and_run(fx: Fixture, tmp_path: Path, compiler: str) -> list[str]:
    """A C program includes the header and prints a gradient value (hex), a float32 one and
    its decimal string; the header is compiled with warnings as errors."""
    fx.save(tmp_path / "fx.h", overwrite=True)
    pre = fx.name
    k = next(iter(fx.grad("float64")))
    cases = fx.dtypes
    f32 = f"(double){pre}_float32_grad_{k}_float32[1]" if "float32" in cases else "0.0"
    want = fx.grad("float64")[k].ravel()[1]
    src = (f'#include <stdio.h>\n#include "fx.h"\nint main(void) {{\n'
           f'  printf("%a\\n%a\\n%s\\n", {pre}_float64_grad_{k}_float64[1], {f32}, '
           f'{pre}_float64_grad_{k}_exact[1]);\n'
           f'  return {pre}_float64_grad_{k}_float64[1] == {float(want).hex()} ? 0 : 3;\n}}\n')
    lang = "c" if compiler == "gcc" else "cpp"
    (tmp_path / f"main.{lang}").write_text(src)
    std = "-std=c99" if compiler == "gcc" else "-std=c++17"
    subprocess.run([compiler, std, "-Wall", "-Wextra", "-Werror", "-pedantic", f"main.{lang}",
                    "-o", "main"], cwd=tmp_path, check=True, capture_output=True)
    return subprocess.run([str(tmp_path / "main")], check=True, capture_output=True,
                          text=True).stdout.split()


@pytest.mark.parametrize("compiler", ["gcc", "g++"])
@pytest.mark.parametrize("name", ["mse", "lstm_classifier", "cnn"])
def test_header_compiles_and_reads_back_bit_exactly(name, compiler, tmp_path):
    if shutil.which(compiler) is None:
        pytest.skip(f"{compiler} is not installed")
    fx = build(name)
    hex64, hex32, decimal = compile_and_run(fx, tmp_path, compiler)
    k = next(iter(fx.grad("float64")))
    assert float.fromhex(hex64) == fx.grad("float64")[k].ravel()[1]
    assert np.float64(float.fromhex(hex64)).tobytes() == fx.grad("float64")[k].ravel()[1].tobytes()
    assert np.float32(float.fromhex(hex32)) == fx.grad("float32")[k].ravel()[1]
    assert decimal == fx.exact("float64")[k].ravel()[1]


@pytest.mark.slow
def test_mlp_header_compiles(tmp_path):
    """mlp's 7 MB header: covered in behaviour by the smaller models; slow to compile."""
    if shutil.which("gcc") is None:
        pytest.skip("gcc is not installed")
    hex64 = compile_and_run(build("mlp"), tmp_path, "gcc")[0]
    assert float.fromhex(hex64) == next(iter(build("mlp").grad("float64").values())).ravel()[1]


# --- a tiny JSON Schema validator (the subset the schema uses), or jsonschema if installed ----
def validate(doc, schema):
    try:
        import jsonschema
    except ImportError:
        _check(doc, schema, schema, "$")
        return
    try:
        jsonschema.validate(doc, schema)
    except jsonschema.ValidationError as e:
        raise AssertionError(f"{e.validator}: {e.message}") from None


_TYPES = {"object": dict, "array": list, "string": str, "null": type(None), "boolean": bool,
          "integer": int, "number": (int, float)}


def _is(value, t):
    if t in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[t])


def _check(v, s, root, where):
    if "$ref" in s:
        s = root["$defs"][s["$ref"].split("/")[-1]]
    if "oneOf" in s:
        ok = 0
        for sub in s["oneOf"]:
            try:
                _check(v, sub, root, where)
                ok += 1
            except AssertionError:
                pass
        assert ok == 1, f"{where}: matches {ok} of oneOf"
    types = s.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        assert any(_is(v, t) for t in types), f"{where}: type {type(v).__name__} not in {types}"
    if "const" in s:
        assert v == s["const"], f"{where}: {v!r} != const {s['const']!r}"
    if "enum" in s:
        assert v in s["enum"], f"{where}: {v!r} not in enum"
    if "pattern" in s:
        assert re.search(s["pattern"], v), f"{where}: {v!r} does not match pattern"
    if "minimum" in s:
        assert v >= s["minimum"], f"{where}: below minimum"
    if isinstance(v, list):
        assert len(v) >= s.get("minItems", 0), f"{where}: too few items"
        for i, x in enumerate(v):
            if "items" in s:
                _check(x, s["items"], root, f"{where}[{i}]")
    if isinstance(v, dict):
        for r in s.get("required", []):
            assert r in v, f"{where}: required {r!r} missing"
        props = s.get("properties", {})
        for k, x in v.items():
            if k in props:
                _check(x, props[k], root, f"{where}.{k}")
            elif s.get("additionalProperties") is False:
                raise AssertionError(f"{where}: additional property {k!r}")
            elif isinstance(s.get("additionalProperties"), dict):
                _check(x, s["additionalProperties"], root, f"{where}.{k}")
