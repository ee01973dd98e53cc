"""No import circle inside `pipelines/`, and no module imports another's private names.

The graph is read statically (AST), with every import counted, `TYPE_CHECKING` and function-level
ones too: a circle hidden behind `if TYPE_CHECKING:` is still a circle between the modules.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, importer: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def import_graph(root: Path, package: str) -> dict[str, set[str]]:
    """{module: modules of `package` it imports}, for every module under root/package."""
    paths = {_module_name(p, root): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        edges = graph.setdefault(name, set())
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                module = _resolve(node, name, path.name == "__init__.py")
                # `from a.b import c` imports the submodule a.b.c when there is one, else a.b itself
                targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in paths else module for a in node.names]
            else:
                continue
            edges.update(t for t in targets if t in paths and t != name)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node] and len(component := _pop_component(stack, node)) > 1:
            found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def _pop_component(stack: list[str], root: str) -> list[str]:
    """Pop the stack down to and including `root`: one strongly connected component."""
    component = []
    while True:
        member = stack.pop()
        component.append(member)
        if member == root:
            return component


def private_imports(root: Path, package: str) -> list[tuple[str, str]]:
    """(module, name) for every `from x import _name` of a module's private function, class or constant.

    Underscore modules (`templates/_common.py`) are a package's shared internals and may be imported as
    modules; what is private to one module stays in it.
    """
    paths = {_module_name(p, root) for p in (root / package).rglob("*.py")}
    bad = []
    for path in sorted((root / package).rglob("*.py")):
        name = _module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom):
                module = _resolve(node, name, path.name == "__init__.py")
                bad += [
                    (name, f"{module}.{a.name}")
                    for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__") and f"{module}.{a.name}" not in paths
                ]
    return bad


def test_pipelines_has_no_import_circle() -> None:
    graph = import_graph(REPO_ROOT, "pipelines")
    assert {"pipelines.runner.workflow_run", "pipelines.runner.dag", "pipelines.render"} <= set(graph)
    assert "pipelines.runner.executor" in graph["pipelines.runner.dag"]  # edges are really read
    assert circles(graph) == []


def test_no_module_imports_another_modules_private_names() -> None:
    assert private_imports(REPO_ROOT, "pipelines") == []


def _package(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


@pytest.mark.parametrize(
    "files",
    [
        # a circle kept alive by a TYPE_CHECKING import, like engine <-> dag once was
        {
            "pkg/__init__.py": "",
            "pkg/engine.py": "from pkg import dag\n",
            "pkg/dag.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.engine import Engine\n",
        },
        # a three-module circle through relative and function-level imports
        {
            "pkg/__init__.py": "",
            "pkg/sub/__init__.py": "",
            "pkg/sub/a.py": "from . import b\n",
            "pkg/sub/b.py": "def f():\n    from pkg.sub.c import g\n",
            "pkg/sub/c.py": "import pkg.sub.a\n",
        },
    ],
    ids=["type-checking", "three-modules"],
)
def test_the_check_finds_a_circle(tmp_path: Path, files: dict[str, str]) -> None:
    root = _package(tmp_path, files)
    assert circles(import_graph(root, "pkg")) != []


def test_the_check_finds_a_private_import(tmp_path: Path) -> None:
    files = {"pkg/__init__.py": "", "pkg/a.py": "from pkg.b import _helper\nfrom pkg import _shared\n", "pkg/b.py": ""}
    root = _package(tmp_path, {**files, "pkg/_shared.py": ""})
    assert private_imports(root, "pkg") == [("pkg.a", "pkg.b._helper")]


#: Which top-level packages each may import: dependencies point one way (docs/CONVENTIONS.md).
#: `testkit` holds what tests and benchmarks share, so neither needs the other.
ALLOWED_LAYERS = {
    "steps": {"steps"},
    "pipelines": {"pipelines", "steps"},
    "testkit": {"testkit", "steps"},
    "benchmarks": {"benchmarks", "testkit", "steps", "pipelines"},
    "tests": {"tests", "testkit", "steps", "pipelines", "benchmarks"},
}


def layer_violations(root: Path, allowed: dict[str, set[str]]) -> list[tuple[str, str]]:
    """(module, imported module) for every import of a first-party package its layer may not use."""
    bad = []
    for package, may in allowed.items():
        for path in sorted((root / package).rglob("*.py")):
            name = _module_name(path, root)
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    targets = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and not node.level:
                    targets = [node.module or ""]
                else:
                    continue
                bad += [(name, t) for t in targets if t.split(".")[0] in allowed and t.split(".")[0] not in may]
    return bad


def test_layers_import_only_downwards() -> None:
    assert {p.name for p in REPO_ROOT.iterdir() if (p / "__init__.py").is_file()} == set(ALLOWED_LAYERS)
    assert layer_violations(REPO_ROOT, ALLOWED_LAYERS) == []


def test_the_check_finds_a_benchmark_importing_tests(tmp_path: Path) -> None:
    files = {"benchmarks/__init__.py": "", "benchmarks/b.py": "def f():\n    from tests.fixtures import s3\n"}
    root = _package(tmp_path, {**files, "tests/__init__.py": "", "testkit/__init__.py": "import steps\n"})
    assert layer_violations(root, ALLOWED_LAYERS) == [("benchmarks.b", "tests.fixtures")]


def test_no_test_imports_another_tests_private_names() -> None:
    # Shared helpers live in tests/fixtures/ or a directory's helper module, under a public name.
    assert [(m, name) for m, name in private_imports(REPO_ROOT, "tests") if name.startswith("tests.")] == []
