"""The package layout is the architecture: imports flow app -> qa/evals -> index -> ingest -> core, with no cycles."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "leftqa"
# Lower numbers are lower layers; a module may import its own layer or any lower one. qa, evals and train share a
# layer, but only evals and train may import qa (an eval runs the Assistant, training fits what the answer layer
# computes; answering never reads eval or training code), and evals and train are independent of each other.
LAYERS = {"core": 0, "ingest": 1, "index": 2, "qa": 3, "evals": 3, "train": 3, "app": 4}
FORBIDDEN = {("qa", "evals"), ("qa", "train"), ("train", "evals"), ("evals", "train")}


def module_name(path: Path, package: Path = PACKAGE) -> str:
    """Dotted module name of a file under the package folder."""
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, modules: set[str]) -> set[str]:
    """leftqa modules a file imports anywhere (top level or inside functions), resolved to known module names."""
    tree = ast.parse(path.read_text("utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import; the layout uses absolute leftqa.* imports"
            base = node.module or ""
            names = [f"{base}.{a.name}" for a in node.names] + [base]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name.startswith("leftqa"):
                found.add(name)
    return found


def stage(module: str) -> str:
    """The stage a module belongs to: its subpackage, or core for the top-level modules."""
    if module in ("leftqa.__main__", "leftqa"):  # `python -m leftqa` is the command line; `import leftqa` the Python API
        return "app"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (len(parts) == 2 and parts[1] in LAYERS) else "core"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module -> the leftqa modules it imports (the package itself excluded: `from leftqa import __version__`)."""
    files = {module_name(p, package): p for p in package.rglob("*.py")}
    modules = set(files)
    return {m: imported_modules(p, modules) - {m, "leftqa"} for m, p in files.items()}


def test_every_module_sits_in_a_known_stage() -> None:
    graph = import_graph()
    assert {stage(m) for m in graph} <= set(LAYERS), sorted(graph)
    for sub in ("ingest", "index", "qa", "evals", "app"):
        assert (PACKAGE / sub / "__init__.py").exists()


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the flow of the pipeline."""
    wrong = []
    for mod, deps in sorted(graph.items()):
        for dep in sorted(deps):
            a, b = stage(mod), stage(dep)
            if LAYERS[b] > LAYERS[a] or (a, b) in FORBIDDEN:
                wrong.append(f"{mod} ({a}) imports {dep} ({b})")
    return wrong


def test_imports_flow_down_the_pipeline() -> None:
    assert upward_imports(import_graph()) == []


def test_no_import_cycles() -> None:
    assert import_cycles(import_graph()) == []


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import leftqa.qa.answer\n", {"leftqa.qa.answer"}),
        ("def f():\n    from leftqa.evals.run import evaluate\n", {"leftqa.evals.run"}),
        ("from leftqa.qa import answer as ans\n", {"leftqa.qa", "leftqa.qa.answer"}),
        ("from leftqa.errors import LeftQAError\n", {"leftqa.errors"}),
    ],
)
def test_the_checker_sees_every_import_form(tmp_path: Path, source: str, expected: set[str]) -> None:
    f = tmp_path / "m.py"
    f.write_text(source)
    known = {"leftqa", "leftqa.qa", "leftqa.qa.answer", "leftqa.evals", "leftqa.evals.run", "leftqa.errors"}
    assert imported_modules(f, known) == expected


def test_the_checker_flags_an_upward_import_and_a_cycle(tmp_path: Path) -> None:
    pkg = tmp_path / "leftqa"
    for sub in ("ingest", "qa", "evals"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "ingest" / "a.py").write_text("from leftqa.qa.b import x\n")  # ingest reaching up into qa
    (pkg / "qa" / "b.py").write_text("def f():\n    import leftqa.ingest.a\n")  # and back: a cycle
    (pkg / "qa" / "c.py").write_text("from leftqa.evals.d import y\n")  # answering reading eval code
    (pkg / "evals" / "d.py").write_text("from leftqa.qa.b import f\n")
    graph = import_graph(pkg)
    assert upward_imports(graph) == [
        "leftqa.ingest.a (ingest) imports leftqa.qa.b (qa)",
        "leftqa.qa.c (qa) imports leftqa.evals.d (evals)",
    ]
    assert import_cycles(graph) == [["leftqa.ingest.a", "leftqa.qa.b"]]
