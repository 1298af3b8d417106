"""Imports point backwards along the flow trace → graph → evaluate → differentiate → reference →
score → report/CLI: a module may import only from its own layer or earlier ones."""

import ast
import pathlib

ORDER = ["errors", "primitives", "graph", "trace", "nn", "losses", "models", "evaluate",
         "differentiate", "reference", "score", "report", "io", "testing", "demo", "cli"]
# the few deliberate exceptions, each for a reason
ALLOWED = {
    ("refgrad.graph.to_sympy", "refgrad.evaluate"),  # decides branches by evaluating the point
    ("refgrad.score.report", "refgrad.report"),  # print(report): rendering, imported lazily
    ("refgrad.score.sweep", "refgrad.report"),  # sweep.plot(path), imported lazily
    ("refgrad.models", "refgrad"),  # `from refgrad import losses, nn`
    ("refgrad.report.fixtures", "refgrad"),  # refgrad.__version__ in fixtures
}
ROOT = pathlib.Path(__file__).resolve().parent.parent / "refgrad"


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ORDER else None


def _imports(path: pathlib.Path):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("refgrad"):
            yield node.module
        elif isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("refgrad"))


def _allowed(mod: str, target: str) -> bool:
    return any((mod == a or mod.startswith(a + "."))
               and (target == b or (b != "refgrad" and target.startswith(b + ".")))
               for a, b in ALLOWED)


def test_imports_point_backwards():
    bad = []
    for f in ROOT.rglob("*.py"):
        mod = ".".join(f.relative_to(ROOT.parent).with_suffix("").parts).removesuffix(".__init__")
        src = _layer(mod)
        if src is None:
            continue
        for target in _imports(f):
            dst = _layer(target)
            if _allowed(mod, target):
                continue
            if dst is not None and ORDER.index(dst) > ORDER.index(src):
                bad.append(f"{mod} imports {target}")
    assert not bad, "imports against the flow:\n" + "\n".join(bad)
