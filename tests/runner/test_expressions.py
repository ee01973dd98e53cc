"""The when/depends/expr evaluators against Argo's documented semantics."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.runner import depends as dep
from pipelines.runner.errors import RunnerError
from pipelines.runner.expressions import evaluate_expr, evaluate_govaluate
from pipelines.runner.templating import substitute


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("heads == heads", True),
        ("tails == heads", False),
        ("true == true", True),
        ("5 > 3", True),
        ("2.5 <= 2", False),
        ("Failed != Succeeded", True),
        ("(a == a) && !(b == c)", True),
        ("a == b || 1 == 1", True),
        ("'hello world' == 'hello world'", True),
        ("10 =~ '^1'", True),
    ],
)
def test_govaluate_when(text: str, expected: bool) -> None:
    assert evaluate_govaluate(text) is expected


@pytest.mark.parametrize("text", ["heads", "1 +", "(a == a", "3 > heads"])
def test_govaluate_rejects_bad_when(text: str) -> None:
    with pytest.raises(RunnerError, match="expression"):
        evaluate_govaluate(text)


@given(st.integers(-(10**6), 10**6), st.integers(-(10**6), 10**6))
def test_govaluate_compares_numbers_numerically(a: int, b: int) -> None:
    assert evaluate_govaluate(f"{a} < {b}") is (a < b)
    assert evaluate_govaluate(f"{a} == {b}") is (a == b)


@given(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True), st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True))
def test_govaluate_bare_words_are_strings(a: str, b: str) -> None:
    if a in ("true", "false") or b in ("true", "false"):
        return
    assert evaluate_govaluate(f"{a} == {b}") is (a == b)


def test_expr_language() -> None:
    env = {
        "inputs": {"parameters": {"should-print": "true", "n": "4"}},
        "workflow": {"parameters": {"json": '[{"value": "true"}]'}},
    }
    assert evaluate_expr("inputs.parameters['should-print'] == 'true'", env) is True
    assert evaluate_expr("jsonpath(workflow.parameters.json, '$[0].value') == 'true'", env) is True
    assert evaluate_expr("asInt(inputs.parameters.n) * 2 + 1", env) == 9
    assert evaluate_expr("asInt(inputs.parameters.n) > 3 ? 'big' : 'small'", env) == "big"
    assert evaluate_expr("'abc' matches '^a' and not ('x' in ['y'])", env) is True
    assert evaluate_expr("sprig.upper('a')", env) == "A"
    with pytest.raises(RunnerError):
        evaluate_expr("missing.name", env)


def test_substitute_strict_and_lenient() -> None:
    scope = {"inputs.parameters.m": "hi", "item": '{"a": 1}'}
    assert substitute("say {{inputs.parameters.m}} {{= item.a + 1 }}", scope, "t") == "say hi 2"
    assert substitute("shell {{ not-ours }}", scope, "t") == "shell {{ not-ours }}"
    with pytest.raises(RunnerError, match="failed to resolve"):
        substitute("{{inputs.parameters.nope}}", scope, "t")


S = dep.TaskState


@pytest.mark.parametrize(
    ("expression", "states", "expected"),
    [
        ("A", {"A": S("Succeeded")}, True),
        ("A", {"A": S("Skipped")}, True),
        ("A", {"A": S("Failed")}, False),
        ("A", {"A": S("Failed", continue_failed=True)}, True),
        ("A", {"A": S("Omitted")}, False),
        ("A.Failed", {"A": S("Failed")}, True),
        ("A.Errored", {"A": S("Error")}, True),
        ("A.Completed", {"A": S("Failed")}, True),
        ("A.Completed", {"A": S("Error")}, False),
        ("A && (C.Succeeded || C.Failed)", {"A": S("Succeeded"), "C": S("Failed")}, True),
        ("B && C", {"B": S("Succeeded"), "C": S("Failed")}, False),
        ("!A.Succeeded", {"A": S("Failed")}, True),
        ("A.AnySucceeded", {"A": S("Failed", ("Failed", "Succeeded"))}, True),
        ("A.AllFailed", {"A": S("Failed", ("Failed", "Failed"))}, True),
        ("A.AllFailed", {"A": S("Failed", ("Failed", "Succeeded"))}, False),
        ("task-1.Succeeded || task-2", {"task-1": S("Failed"), "task-2": S("Succeeded")}, True),
    ],
)
def test_depends(expression: str, states: dict, expected: bool) -> None:
    assert dep.evaluate(expression, states) is expected


PHASES = ["Succeeded", "Failed", "Error", "Skipped", "Omitted"]


@given(st.lists(st.sampled_from(PHASES), min_size=1, max_size=5), st.data())
def test_depends_boolean_algebra(phases: list[str], data: st.DataObject) -> None:
    """`depends` is plain boolean logic over per-task results: compare with Python's own."""
    states = {f"t{i}": S(p) for i, p in enumerate(phases)}
    atoms = st.sampled_from([f"t{i}.{r}" for i in range(len(phases)) for r in ("Succeeded", "Failed", "Skipped")])

    def build(depth: int) -> st.SearchStrategy[str]:
        if depth == 0:
            return atoms
        sub = build(depth - 1)
        return st.one_of(
            atoms, st.tuples(sub, st.sampled_from(["&&", "||"]), sub).map(" ".join), sub.map(lambda s: f"!({s})")
        )

    expression = data.draw(build(3))
    python = expression.replace("&&", " and ").replace("||", " or ").replace("!", " not ")
    for name, state in states.items():
        for result in ("Succeeded", "Failed", "Skipped"):
            python = python.replace(f"{name}.{result}", str(state.phase == result))
    assert dep.evaluate(expression, states) is eval(python)


def test_depends_names_and_errors() -> None:
    assert dep.referenced_tasks("A && (B.Failed || !C)") == ["A", "B", "C"]
    assert dep.depends_of({"dependencies": ["A", "B"]}) == "A && B"
    with pytest.raises(RunnerError, match="no task named"):
        dep.evaluate("Z", {"A": S("Succeeded")})
    with pytest.raises(RunnerError, match="invalid depends result"):
        dep.evaluate("A.Bogus", {"A": S("Succeeded")})
