"""The runner's shape: phases and node types only through their enums, and short functions."""

from __future__ import annotations

import ast

from pipelines.runner.phase import NodeType, Phase, TaskResult
from pipelines.tools import REPO_ROOT

RUNNER = REPO_ROOT / "pipelines" / "runner"
MAX_FUNCTION_LINES = 60
ENUM_VALUES = {str(m) for enum in (Phase, NodeType, TaskResult) for m in enum}


def _modules():
    for path in sorted(RUNNER.glob("*.py")):
        yield path, ast.parse(path.read_text(), str(path))


def test_no_phase_or_node_type_literal_outside_the_enums() -> None:
    found = [
        f"{path.name}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        if path.name != "phase.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in ENUM_VALUES
    ]
    assert found == []


def test_no_runner_function_is_long() -> None:
    long = {
        f"{path.name}:{node.name}": node.end_lineno - node.lineno + 1
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }
    assert long == {}


def test_phase_sets() -> None:
    assert {p for p in Phase if p.failed} == {Phase.FAILED, Phase.ERROR}
    assert {p for p in Phase if p.completed} == {Phase.SUCCEEDED, Phase.FAILED, Phase.ERROR}
    assert {p for p in Phase if not p.done} == {Phase.PENDING, Phase.RUNNING}
    assert Phase.SUCCEEDED == "Succeeded" and f"{Phase.OMITTED}" == "Omitted"
