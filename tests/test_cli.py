"""The `refgrad` command: verdicts on arrays written to files the way a C++ program would.

Most cases call refgrad.cli.main(argv) in-process; a few run the `refgrad` console script.
"""

import contextlib
import io
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import refgrad
from refgrad import cli
from refgrad.differentiate.reverse import backward
from refgrad.evaluate.backends import get_backend
from refgrad.evaluate.forward import forward
from refgrad.models import MODELS, in_dtype

PNG = b"\x89PNG\r\n\x1a\n"
HAS_CERTIFY = (Path(refgrad.__file__).parent / "score" / "certify.py").exists()


def run(*argv) -> tuple[int, str, str]:
    """refgrad.cli.main in-process: (exit status, stdout, stderr); argparse exits count too."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = cli.main([str(a) for a in argv])
        except SystemExit as e:
            rc = e.code
    return rc, out.getvalue(), err.getvalue()


def usage_error(*argv) -> str:
    """Bad input: exit status 2 and exactly one line on stderr, no traceback. Returns it."""
    rc, out, err = run(*argv)
    assert "Traceback" not in err + out
    lines = err.strip().splitlines()
    assert rc == 2, (rc, out[-500:], err[-500:])
    assert len(lines) == 1, err
    assert lines[0].startswith("refgrad: error: "), err
    return lines[0]


def dump(directory: Path, arrays: dict) -> Path:
    """One file per tensor named after it, printf("%.9g\\n") per value in row-major order."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, a in arrays.items():
        a = np.asarray(a)
        fmt = "{:d}" if a.dtype.kind in "iu" else "{:.9g}"
        with open(directory / f"{name}.txt", "w") as f:
            for v in a.reshape(-1).tolist():
                f.write(fmt.format(v) + "\n")
    return directory


# --- the first user story in float32, from text files -----------------------------------------
@pytest.fixture(scope="module")
def lstm(tmp_path_factory):
    """The float32 LSTM: params/data, a correct float32 backprop, the 1/T-scaled bug, an FD."""
    root = tmp_path_factory.mktemp("lstm")
    m = MODELS["lstm_classifier"]
    p, d = m.example(0)
    p, d = in_dtype(p, np.float32), in_dtype(d, np.float32)
    graph = refgrad.trace(m.loss, p, d)
    b = get_backend("float32")
    good = backward(graph, b, forward(graph, b))
    T = d["xs"].shape[0]
    assert T == 10
    numeric = dict(refgrad.finite_difference(graph, dtype=np.float32, eps=5e-3))
    for name, arrays in (("params", p), ("data", d), ("fixed", good), ("numeric", numeric),
                         ("buggy", {k: v / np.float32(T) for k, v in good.items()})):
        dump(root / name, arrays)
    return root


def _check_lstm(root: Path, analytic: str, *more) -> tuple[int, str, str]:
    return run("check", "lstm_classifier", "--params", root / "params", "--data", root / "data",
               "--analytic", root / analytic, "--dtype", "float32", *more)


def test_text_files_hold_the_float32_point(lstm):
    """%.9g round-trips float32: the checked point is exactly the float32 example."""
    from refgrad.io import read_arrays

    m = MODELS["lstm_classifier"]
    p = in_dtype(m.example(0)[0], np.float32)
    back = read_arrays(str(lstm / "params"), m.params)
    for k in p:
        np.testing.assert_array_equal(back[k].astype(np.float32), p[k])


def test_check_scale_bug_exits_1(lstm):
    rc, out, err = _check_lstm(lstm, "buggy")
    assert rc == 1, err
    first = out.splitlines()[0]
    assert first.startswith("analytic: BUG")
    assert "scale" in first and "0.1 ×" in first and "1/T" in first
    assert "the number of time steps" in first


def test_check_fixed_exits_0_and_user_fd_ok(lstm):
    rc, out, err = _check_lstm(lstm, "fixed", "--numeric", lstm / "numeric", "--eps", "5e-3")
    assert rc == 0, (out, err)
    first = out.splitlines()[0]
    assert first.startswith("analytic: CORRECT (within float32 round-off)")
    assert "numeric (user central FD, eps 0.005): OK" in first
    assert "BUG" not in out


def test_check_json(lstm):
    rc, out, err = _check_lstm(lstm, "buggy", "--numeric", lstm / "numeric", "--eps", "5e-3",
                               "--json")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["analytic"]["verdict"] == "bug"
    assert doc["numeric"]["verdict"] == "ok"
    assert doc["eps"] == 5e-3 and doc["dtype"] == "float32"
    assert set(doc["analytic"]["tensors"]) == set(MODELS["lstm_classifier"].params)
    assert doc["findings"]
    for f in doc["findings"]:
        assert {"kind", "tensor", "evidence"} <= set(f)
    scale = [f for f in doc["findings"] if f["kind"] == "scale"]
    assert scale and scale[0]["evidence"]["named"] == "1/T"
    assert scale[0]["evidence"]["rational"] == "1/10"


def test_check_analytic_files_must_match_the_params(lstm, tmp_path):
    shutil.copytree(lstm / "fixed", tmp_path / "a")
    (tmp_path / "a" / "W_out.txt").rename(tmp_path / "a" / "W_o.txt")
    msg = usage_error("check", "lstm_classifier", "--params", lstm / "params", "--data",
                      lstm / "data", "--analytic", tmp_path / "a")
    assert "analytic gradient" in msg and "unknown ['W_o']" in msg and "missing ['W_out']" in msg


def test_non_integer_labels(lstm, tmp_path):
    shutil.copytree(lstm / "data", tmp_path / "d")
    lines = (tmp_path / "d" / "labels.txt").read_text().splitlines()
    lines[3] = "2.5"
    (tmp_path / "d" / "labels.txt").write_text("\n".join(lines) + "\n")
    msg = usage_error("check", "lstm_classifier", "--params", lstm / "params", "--data",
                      tmp_path / "d", "--analytic", lstm / "fixed")
    assert "data 'labels'" in msg and "integer labels" in msg


def test_labels_out_of_range(lstm, tmp_path):
    shutil.copytree(lstm / "data", tmp_path / "d")
    (tmp_path / "d" / "labels.txt").write_text("7\n" * 10)
    msg = usage_error("check", "lstm_classifier", "--params", lstm / "params", "--data",
                      tmp_path / "d", "--analytic", lstm / "fixed")
    assert "labels" in msg


# --- the C++ example, end to end through the console script -----------------------------------
@pytest.mark.skipif(shutil.which("g++") is None or shutil.which("refgrad") is None,
                    reason="needs g++ and the refgrad console script")
def test_cpp_example_end_to_end(tmp_path):
    src = Path(__file__).resolve().parents[1] / "examples" / "cpp" / "mse_grad.cpp"
    exe, case = tmp_path / "mse_grad", tmp_path / "case"
    subprocess.run(["g++", "-O2", "-o", str(exe), str(src)], check=True, timeout=120)

    def sh(*argv):
        return subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=120)

    r = sh("refgrad", "example", "mse", "--out", case)
    assert r.returncode == 0, r.stderr
    assert (case / "params" / "X.txt").exists() and (case / "data" / "T.txt").exists()
    check = ("refgrad", "check", "mse", "--params", case / "params", "--data", case / "data",
             "--analytic", case / "analytic", "--dtype", "float32")
    assert sh(exe, case, 1).returncode == 0
    r = sh(*check)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.startswith("analytic: BUG") and "8 ×" in r.stdout.splitlines()[0]
    assert sh(exe, case, 0).returncode == 0
    r = sh(*check)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.startswith("analytic: CORRECT")


@pytest.mark.skipif(shutil.which("refgrad") is None, reason="needs the refgrad console script")
def test_console_script_bad_input_is_one_line(tmp_path):
    r = subprocess.run(["refgrad", "check", "mse", "--params", str(tmp_path / "nope"),
                        "--analytic", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [f"refgrad: error: {tmp_path / 'nope'}: "
                                             "no such file or directory"]


# --- mse: example, sweep, reference ----------------------------------------------------------
@pytest.fixture(scope="module")
def mse_case(tmp_path_factory):
    root = tmp_path_factory.mktemp("mse")
    rc, out, err = run("example", "mse", "--out", root)
    assert rc == 0, err
    return root


def test_example_writes_the_float32_point(mse_case):
    x = np.loadtxt(mse_case / "params" / "X.txt")
    t = np.loadtxt(mse_case / "data" / "T.txt")
    p, d = in_dtype(MODELS["mse"].example(0)[0], np.float32), MODELS["mse"].example(0)[1]
    assert x.shape == (64,) and t.shape == (64,)
    np.testing.assert_array_equal(x.astype(np.float32), p["X"].reshape(-1))
    np.testing.assert_array_equal(t.astype(np.float32), d["T"].astype(np.float32).reshape(-1))


def test_sweep_plot_and_table(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "out.png"
    rc, out, err = run("sweep", "mse", "--dtype", "float32", "--plot", png)
    assert rc == 0, err
    assert png.read_bytes()[:8] == PNG
    assert out.split()[:4] == ["step", "observed", "predicted", "max"]
    assert "best step: observed" in out and f"plot: {png}" in out
    assert len([ln for ln in out.splitlines() if ln.strip()[:1].isdigit()]) == 25
    assert "polynomial of degree 2" in out


def test_sweep_json():
    rc, out, err = run("sweep", "mse", "--dtype", "float32", "--fd-steps", "1e-3,1e-2,1e-1",
                       "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert {"steps", "observed", "predicted", "best_observed", "best_predicted",
            "findings"} <= set(doc)
    assert doc["steps"] == [1e-3, 1e-2, 1e-1]
    assert len(doc["observed"]) == len(doc["predicted"]) == 3
    assert doc["best_observed"] in doc["steps"]
    assert doc["observed"][0] > doc["observed"][2]  # MSE: pure round-off, larger step is better


def _decimal_close(text: str, exact: Fraction, digits: int) -> bool:
    return abs(Fraction(text) - exact) <= abs(exact) * Fraction(10) ** (1 - digits)


def test_reference_json_file_and_no_clobber(tmp_path):
    path = tmp_path / "out.json"
    rc, out, err = run("reference", "mse", "--digits", 40, "-o", path)
    assert rc == 0, err
    doc = json.loads(path.read_text())
    assert doc["model"] == "mse" and doc["shapes"] == {"X": [8, 8]}
    assert doc["certified_digits"] >= 40
    p, d = MODELS["mse"].example(0)
    x = [[Fraction(v) for v in row] for row in p["X"].tolist()]
    t = [[Fraction(v) for v in row] for row in d["T"].tolist()]
    assert isinstance(doc["loss"], str)
    loss = sum((x[i][j] - t[i][j]) ** 2 for i in range(8) for j in range(8)) / 128
    assert _decimal_close(doc["loss"], loss, 40)
    grad = doc["grad"]["X"]
    assert len(grad) == 8 and all(len(row) == 8 for row in grad)
    for i in range(8):
        for j in range(8):
            assert isinstance(grad[i][j], str)
            assert _decimal_close(grad[i][j], (x[i][j] - t[i][j]) / 64, 40), (i, j)

    before = path.read_bytes()
    msg = usage_error("reference", "mse", "--digits", 40, "-o", path)
    assert str(path) in msg and "--force" in msg
    assert path.read_bytes() == before

    rc, out, err = run("reference", "mse", "--digits", 20, "-o", path, "--force")
    assert rc == 0, err
    assert path.read_bytes() != before
    assert json.loads(path.read_text())["certified_digits"] < doc["certified_digits"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["out.json"]  # no temp files left


def test_reference_text_indices():
    rc, out, err = run("reference", "mse", "--digits", 15, "--show", 2)
    assert rc == 0, err
    assert "(0, 0)" in out and "np.int64" not in out


# --- models and their options ----------------------------------------------------------------
def test_models_lists_the_four_with_params():
    rc, out, err = run("models")
    assert rc == 0, err
    heads = [ln.split()[0] for ln in out.splitlines() if ln and not ln.startswith(" ")]
    assert heads == ["mse", "lstm_classifier", "cnn", "mlp"]
    for shown in ("params: X (8, 8)", "data:   T (8, 8)", "weight_ih (20, 5)", "b_out (5,)",
                  "labels (10,)", "w1 (4, 1, 3, 3)", "W3 (5, 64)", "W1 (128, 64)",
                  "--hidden 5", "--steps 10"):
        assert shown in out, shown


def test_models_takes_no_arguments():
    rc, out, err = run("models", "extra")
    assert rc == 2 and "unrecognized arguments: extra" in err


def test_builtin_options_configure_the_model():
    rc, out, err = run("check", "lstm_classifier", "--hidden", 3, "--steps", 4, "--eps", "1e-2",
                       "--json")
    assert rc == 0, (out[-1000:], err)
    doc = json.loads(out)
    assert doc["analytic"] is None and doc["numeric"]["verdict"] == "ok" and doc["eps"] == 1e-2
    elements = {k: sum(v["elements"].values()) for k, v in doc["numeric"]["tensors"].items()}
    assert elements == {"weight_ih": 60, "weight_hh": 36, "bias_ih": 12, "bias_hh": 12,
                        "W_out": 15, "b_out": 5}


def test_builtin_options_set_the_expected_shapes(lstm):
    msg = usage_error("check", "lstm_classifier", "--hidden", 3, "--params", lstm / "params",
                      "--data", lstm / "data", "--eps", "1e-2")
    assert "values, but the tensor has shape" in msg  # the first of the sorted files:
    assert "'W_out'" in msg and "25 values" in msg and "(5, 3)" in msg


def test_sweep_model_option_steps():
    rc, out, err = run("sweep", "lstm_classifier", "--hidden", 2, "--steps", 3, "--json")
    assert rc == 0, err
    assert json.loads(out)["steps"] != [3.0]


# --- path/to/file.py:function models ---------------------------------------------------------
USER_MODEL = '''
def loss(p, d):
    import refgrad as rg
    return rg.sum(rg.tanh(p["w"]) ** 2)
'''


@pytest.fixture
def user_model(tmp_path):
    (tmp_path / "model.py").write_text(USER_MODEL)
    w = np.array([[0.5, -0.25, 1.0], [0.125, 0.2, -0.3]])
    np.savez(tmp_path / "w.npz", w=w)
    (tmp_path / "wdir").mkdir()
    np.save(tmp_path / "wdir" / "w.npy", w)
    th = np.tanh(w)
    (tmp_path / "good").mkdir()
    np.save(tmp_path / "good" / "w.npy", 2 * th * (1 - th * th))
    (tmp_path / "half").mkdir()
    np.save(tmp_path / "half" / "w.npy", th * (1 - th * th))  # forgot the factor 2
    return tmp_path


@pytest.mark.parametrize("params", ["w.npz", "wdir"])
def test_file_model_correct(user_model, params):
    rc, out, err = run("check", f"{user_model / 'model.py'}:loss", "--params",
                       user_model / params, "--analytic", user_model / "good", "--dtype", "float64")
    assert rc == 0, (out, err)
    assert out.startswith("analytic: CORRECT (within float64 round-off)")


def test_file_model_bug(user_model):
    rc, out, err = run("check", f"{user_model / 'model.py'}:loss", "--params",
                       user_model / "wdir", "--analytic", user_model / "half", "--dtype", "float64",
                       "--json")
    assert rc == 1, err
    doc = json.loads(out)
    assert doc["analytic"]["verdict"] == "bug"
    scale = [f for f in doc["findings"] if f["kind"] == "scale"]
    assert scale and scale[0]["tensor"] == "w" and scale[0]["evidence"]["factor"] == 0.5


def test_file_model_reference(user_model):
    rc, out, err = run("reference", f"{user_model / 'model.py'}:loss", "--params",
                       user_model / "w.npz", "--digits", 20, "--json")
    assert rc == 0, err
    doc = json.loads(out)
    w = np.load(user_model / "w.npz")["w"]
    assert abs(float(doc["loss"]) - float(np.sum(np.tanh(w) ** 2))) < 1e-14
    assert doc["shapes"] == {"w": [2, 3]}


def test_file_model_errors(user_model):
    model = user_model / "model.py"
    msg = usage_error("check", f"{user_model / 'nope.py'}:loss", "--params", user_model / "wdir",
                      "--eps", "1e-3")
    assert "nope.py" in msg and "does not exist" in msg
    msg = usage_error("check", f"{model}:nope", "--params", user_model / "wdir", "--eps", "1e-3")
    assert "has no function 'nope'" in msg
    msg = usage_error("check", f"{model}:loss", "--eps", "1e-3")
    assert "--params" in msg
    msg = usage_error("check", f"{model}:loss", "--hidden", 3, "--params", user_model / "wdir",
                      "--eps", "1e-3")
    assert "built-in models" in msg
    (user_model / "broken.py").write_text("def loss(p, d):\n    return (\n")
    msg = usage_error("check", f"{user_model / 'broken.py'}:loss", "--params",
                      user_model / "wdir", "--eps", "1e-3")
    assert "cannot import" in msg and "broken.py" in msg


CE_MODEL = '''
import refgrad as rg

def loss(p, d):
    return rg.losses.softmax_cross_entropy(rg.matmul(d["x"], p["W"]), d["labels"],
                                           reduction="sum")
'''


def test_file_model_with_integer_labels(tmp_path):
    (tmp_path / "ce.py").write_text(CE_MODEL)
    rng = np.random.default_rng(0)
    (tmp_path / "p").mkdir()
    (tmp_path / "d").mkdir()
    np.save(tmp_path / "p" / "W.npy", rng.standard_normal((3, 4)).astype(np.float32))
    np.save(tmp_path / "d" / "x.npy", rng.standard_normal((2, 3)).astype(np.float32))
    np.save(tmp_path / "d" / "labels.npy", np.array([1, 3]))
    rc, out, err = run("check", f"{tmp_path / 'ce.py'}:loss", "--params", tmp_path / "p",
                       "--data", tmp_path / "d", "--eps", "1e-2")
    assert rc in (0, 1), err


# --- bad input: one line, exit 2 -------------------------------------------------------------
@pytest.fixture(scope="module")
def bad(tmp_path_factory, mse_case):
    """Broken variants of the mse case."""
    root = tmp_path_factory.mktemp("bad")
    x = (mse_case / "params" / "X.txt").read_text().splitlines()
    for name, lines in (("short", x[:63]), ("abc", x[:4] + ["abc"] + x[5:]),
                        ("nan", x[:2] + ["nan"] + x[3:])):
        (root / name).mkdir()
        (root / name / "X.txt").write_text("\n".join(lines) + "\n")
    (root / "extra").mkdir()
    (root / "extra" / "X.txt").write_text("\n".join(x) + "\n")
    (root / "extra" / "Y.txt").write_text("1\n")
    (root / "empty").mkdir()
    np.savez(root / "full.npz", X=np.zeros((8, 8)))
    (root / "trunc.npz").write_bytes((root / "full.npz").read_bytes()[:100])
    (root / "bin").mkdir()
    (root / "bin" / "X.txt").write_bytes(b"\xff\xfe\x00\x01")
    return root


BAD = [
    # (argv with {case}/{bad}/{tmp} placeholders, fragments of the one-line error)
    (["check", "mse", "--params", "{tmp}/nope", "--eps", "1e-2"], ["nope", "no such file"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{tmp}/nodata", "--eps", "1e-2"],
     ["nodata", "no such file"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{case}/data",
      "--analytic", "{tmp}/noanalytic"], ["noanalytic", "no such file"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{case}/data",
      "--numeric", "{tmp}/X.txt"], ["X.txt", "no such file"]),
    (["check", "mse", "--params", "{bad}/empty", "--eps", "1e-2"], ["no .npy/.txt/.csv/.json"]),
    (["check", "mse", "--params", "{bad}/extra", "--data", "{case}/data", "--eps", "1e-2"],
     ["params in", "unknown ['Y']", "expected: X"]),
    (["check", "mse", "--params", "{case}/data", "--data", "{case}/data", "--eps", "1e-2"],
     ["unknown ['T']", "missing ['X']"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{case}/params", "--eps", "1e-2"],
     ["data in", "missing ['T']"]),
    (["check", "mse", "--params", "{bad}/short", "--data", "{case}/data", "--eps", "1e-2"],
     ["'X'", "63 values", "(8, 8)", "64 values"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{case}/data",
      "--analytic", "{bad}/short"], ["analytic gradient 'X'", "63 values"]),
    (["check", "mse", "--params", "{bad}/abc", "--data", "{case}/data", "--eps", "1e-2"],
     ["X.txt:5:", "'abc'", "not a number"]),
    (["check", "mse", "--params", "{bad}/nan", "--data", "{case}/data", "--eps", "1e-2"],
     ["'X'", "non-finite"]),
    (["check", "mse", "--eps", "0"], ["eps must be a positive"]),
    (["check", "mse", "--eps", "-0.001"], ["eps must be a positive"]),
    (["check", "mse", "--eps=-1e-3"], ["eps must be a positive"]),
    (["check", "mse", "--params", "{case}/params", "--data", "{case}/data",
      "--numeric", "{case}/params", "--eps=-5e-3"], ["eps must be a positive"]),
    (["check", "mse", "--eps", "nan"], ["eps must be a positive"]),
    (["check", "nosuch", "--eps", "1e-2"], ["unknown model 'nosuch'", "mse, lstm_classifier"]),
    (["check", "lstm_classifier", "--hidden", "x", "--eps", "1e-2"],
     ["--hidden takes a positive integer", "'x'"]),
    (["check", "lstm_classifier", "--hiden", "3", "--eps", "1e-2"], ["no option", "hiden"]),
    (["check", "lstm_classifier", "--hidden", "--eps", "1e-2"], ["--name value pairs"]),
    (["check", "mse"], ["give --analytic"]),
    (["check", "mse", "--digits", "0", "--eps", "1e-2"], ["digits"]),
    (["sweep", "mse", "--fd-steps", "abc"], ["--fd-steps takes comma-separated numbers"]),
    (["sweep", "mse", "--fd-steps", "1e-3,-1"], ["steps"]),
    (["reference", "mse", "-o", "{tmp}/nodir/out.json"], ["nodir"]),
    (["example", "{tmp}/m.py:loss", "--out", "{tmp}/ex"], ["takes a built-in model"]),
    pytest.param(["check", "lstm_classifier", "--hidden", "3.5", "--eps", "1e-2"], ["hidden"]),
    pytest.param(["check", "lstm_classifier", "--hidden", "0", "--eps", "1e-2"], ["hidden"]),
    pytest.param(["check", "mse", "--rows", "0", "--eps", "1e-2"], ["rows"]),
    pytest.param(["check", "mlp", "--sizes", "3", "--eps", "1e-2"], ["sizes"]),
    pytest.param(["check", "mse", "--params", "{bad}/trunc.npz", "--eps", "1e-2"], ["trunc.npz"]),
    pytest.param(["check", "mse", "--params", "{bad}/bin", "--eps", "1e-2"], ["X.txt"]),
]


@pytest.mark.parametrize("argv, fragments", BAD)
def test_bad_input(argv, fragments, mse_case, bad, tmp_path):
    (tmp_path / "m.py").write_text(USER_MODEL)
    argv = [a.format(case=mse_case, bad=bad, tmp=tmp_path) for a in argv]
    msg = usage_error(*argv)
    for f in fragments:
        assert f in msg, (f, msg)


def test_argparse_errors_exit_2():
    for argv in (["check", "mse", "--eps", "abc"], ["check"], ["nosuchcommand"],
                 ["check", "mse", "--dtype", "float8", "--eps", "1e-2"],
                 ["check", "mse", "--eps", "-1e-3"]):  # argparse: "-1e-3" looks like an option
        rc, out, err = run(*argv)
        assert rc == 2 and "Traceback" not in err and "error:" in err, argv


# --- certify (when refgrad.score.certify exists) ---------------------------------------------
certify_only = pytest.mark.skipif(not HAS_CERTIFY, reason="refgrad/score/certify.py not written yet")


@certify_only
def test_certify_proved():
    rc, out, err = run("certify", "mse", "--wrt", "X", "--formula", "(X[i,j] - T[i,j])/64")
    assert rc == 0, err
    assert "proved" in out.lower()


@certify_only
def test_certify_refuted():
    rc, out, err = run("certify", "mse", "--wrt", "X", "--formula", "(X[i,j] - T[i,j])/8")
    assert rc == 1, err
    assert "refuted" in out.lower()


@certify_only
def test_certify_formula_does_not_parse():
    msg = usage_error("certify", "mse", "--wrt", "X", "--formula", "(X[i,j] - ")
    assert "does not parse" in msg


@certify_only
def test_certify_wrt_not_a_param():
    assert "'Z'" in usage_error("certify", "mse", "--wrt", "Z", "--formula", "X[i,j]")


@certify_only
def test_certify_unknown_function():
    msg = usage_error("certify", "mse", "--wrt", "X", "--formula", "foo(X[i,j])")
    assert "foo" in msg and "supported: exp, log" in msg


# --- the demo (one story, the fastest) -------------------------------------------------------
def test_demo_mse(tmp_path):
    pytest.importorskip("matplotlib")
    rc, out, err = run("demo", "mse", "--out", tmp_path)
    assert rc == 0, err
    assert "story 3" in out and "BUG" in out
    assert (tmp_path / "sweep_mse.png").read_bytes()[:8] == PNG
