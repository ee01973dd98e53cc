"""expr-lang closures and builtins in the runner's evaluator, held to what expr-lang v1.17 (Argo's) does.

`CASES` lists each form with the value (or the error) expr-lang gives; `test_expr_oracle.py` runs the
same table through the real engine (Argo's own `{{= }}` code path, built from the pinned module), so a
row cannot drift from upstream.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.runner.errors import RunnerError
from pipelines.runner.expressions import evaluate_expr, to_text

# The lane filter the batch-inference template once rendered (its `infer-lane` Steps template, removed
# when lanes became long-lived workers that claim shards from a work queue), kept as a case
# of an expression Argo refuses: expr-lang v1.17 declares `#index` only inside map and reduce, so it
# fails at compile time ("unknown pointer #index").
TEMPLATE_LANE = (
    "toJson(filter(fromJSON(inputs.parameters.shards), "
    "{#index % asInt(inputs.parameters.lanes) == asInt(inputs.parameters.lane)}))"
)
# The same selection in a form expr-lang accepts: pair each shard with its index first.
LANE = (
    "toJson(map(filter(map(fromJSON(inputs.parameters.shards), { {i: #index, s: #} }), "
    "{.i % asInt(inputs.parameters.lanes) == asInt(inputs.parameters.lane)}), {.s}))"
)

ENV: dict[str, Any] = {
    "inputs": {"parameters": {"shards": '["a","b","c","d","e"]', "lanes": "2", "lane": "1", "n": "7"}},
    "workflow": {"parameters": {"rows": '[{"name": "x", "size": 3}, {"name": "y", "size": 12}]'}},
}
ROWS = "fromJSON(workflow.parameters.rows)"

#: (expression, expected value) -- or (expression, RunnerError, text the error must contain).
CASES: list[tuple] = [
    # the predicate builtins, braced and bare
    ("filter([1, 2, 3, 4], # > 2)", [3, 4]),
    ("filter([1, 2, 3, 4], {# % 2 == 0})", [2, 4]),
    ("map([1, 2, 3], {# * 10})", [10, 20, 30]),
    ("map([1, 2, 3], #index)", [0, 1, 2]),
    ("map(['a', 'b'], {# + string(#index)})", ["a0", "b1"]),
    ("all([1, 2], # > 0)", True),
    ("all([1, -2], # > 0)", False),
    ("all([], # > 0)", True),
    ("any([1, -2], # < 0)", True),
    ("any([], true)", False),
    ("none([1, 2], # > 5)", True),
    ("none([1, 6], # > 5)", False),
    ("one([1, 2, 3], # == 2)", True),
    ("one([2, 2], # == 2)", False),
    ("count([1, 2, 3], # >= 2)", 2),
    ("count([true, false, true])", 2),
    ("find([1, 2, 3], # > 1)", 2),
    ("find([1, 2, 3], # > 5)", None),
    ("findIndex([1, 2, 3], # > 1)", 1),
    ("findIndex([1, 2, 3], # > 5)", None),  # nil, not -1
    ("findLast([1, 2, 3], # < 3)", 2),
    ("findLastIndex([1, 2, 3], # < 3)", 1),
    ("reduce([1, 2, 3], #acc + #)", 6),
    ("reduce([1, 2, 3], #acc + #index, 10)", 13),
    ("filter([1, 2, 3], {# > 1},)", [2, 3]),
    # maps: `.field` is `#.field`; map literals inside closures
    (f"map({ROWS}, .name)", ["x", "y"]),
    (f"filter({ROWS}, #.size > 5)", [{"name": "y", "size": 12}]),
    (f"find({ROWS}, .name == 'y').size", 12),
    ("map([1, 2], { {v: #, i: #index} })", [{"v": 1, "i": 0}, {"v": 2, "i": 1}]),
    ("{a: 1, 'b c': 2, 3: 'x'}['b c']", 2),
    # nested closures: `#` and `#index` are the innermost element's
    ("map([[1, 2], [3]], map(#, # * 10))", [[10, 20], [30]]),
    ("map([[1, 2], [3]], {map(#, #index)})", [[0, 1], [0]]),
    ("map([[1, 2], [3, 4]], {filter(#, # > 1)})", [[2], [3, 4]]),
    ("map([1, 2], {#index + findIndex([5, 6], # == 6)})", [1, 2]),
    ("all(['a'], # == 'a' and none([1], # == 2))", True),
    # closures see the environment
    ("filter([1, 5, 9], # > asInt(inputs.parameters.n))", [9]),
    # other builtins
    ("len('héllo')", 5),
    ("len([1, 2])", 2),
    (f"len({ROWS}[0])", 2),
    ("toJson({b: '<&>', a: 1.0})", '{"a":1,"b":"\\u003c\\u0026\\u003e"}'),
    ("toJSON([1, {a: 2}])", '[\n  1,\n  {\n    "a": 2\n  }\n]'),
    ("fromJSON('[1, 2.5]')", [1, 2.5]),
    ("fromJSON('{\"a\": [true, null]}').a", [True, None]),
    ("asInt('7') + int(-3.7)", 4),
    ("asFloat('1e3')", 1000.0),
    ("float(2) / 4", 0.5),
    ("string(1.5)", "1.5"),
    ("string(1e6)", "1e+06"),
    ("string(123456.7)", "123456.7"),
    ("string(0.00001)", "1e-05"),
    ("string(nil)", "<nil>"),
    ("string([1.0, 'a b', nil])", "[1 a b <nil>]"),
    ("string({b: 1, a: [1, 2.5]})", "map[a:[1 2.5] b:1]"),
    ("string(true)", "true"),
    ("-7 % 3", -1),
    ("7 / 7", 1.0),
    # the lane selection
    (LANE, '["b","d"]'),
    # what expr-lang refuses
    (TEMPLATE_LANE, RunnerError, "unknown pointer #index"),
    ("filter([1, 2], #index > 0)", RunnerError, "unknown pointer #index"),
    ("find([1, 2], #index > 0)", RunnerError, "unknown pointer #index"),
    ("map([1, 2], #acc)", RunnerError, "unknown pointer #acc"),
    ("map([1, 2], #foo)", RunnerError, "unknown pointer #foo"),
    ("filter([1, 2, 3], 1)", RunnerError, "predicate should return boolean"),
    ("filter([1, 2, 3], {# > 1 ? 'x' : 'y'})", RunnerError, "predicate should return boolean"),
    ("count([1, 2], #)", RunnerError, "predicate should return boolean"),
    ("reduce([], #acc)", RunnerError, "reduce of empty array"),
    ("int('3.5')", RunnerError, "int(3.5)"),
    ("int(' 3')", RunnerError, "int( 3)"),
    ("int(true)", RunnerError, "int"),
    ("float(true)", RunnerError, "float"),
    ("len(5)", RunnerError, "len"),
    ("7 % 2.0", RunnerError, "%"),
    ("fromJSON('[1]')[0] % 2", RunnerError, "%"),  # JSON numbers are float64
    ("filter({'a': 1}, true)", RunnerError, "filter"),
    ("map([1], {a: 1})", RunnerError, "':'"),  # `{` after `map(xs,` opens the closure
]

#: Syntax the runner does not implement: it must refuse naming the expression, never guess.
UNSUPPORTED = [
    "sum([1, 2])",
    "groupBy([1, 2], # > 1)",
    "sortBy([2, 1], #)",
    "1..3",
    "[1, 2] | map(# * 2)",
    "let x = 1; x",
    "filter([1], {let y = #; y > 0})",
    "2 ** 3",
    "{'a': 1}?.a",
    "#",
    ".a",
    "map([1], # ; 1)",
]


def _ids(case: tuple) -> str:
    return case[0][:60]


@pytest.mark.parametrize("case", [c for c in CASES if len(c) == 2], ids=_ids)
def test_closures_and_builtins(case: tuple) -> None:
    expression, expected = case
    value = evaluate_expr(expression, ENV)
    assert value == expected
    assert type(value) is type(expected) or {type(value), type(expected)} <= {int, float}


@pytest.mark.parametrize("case", [c for c in CASES if len(c) == 3], ids=_ids)
def test_what_expr_lang_refuses_is_refused(case: tuple) -> None:
    expression, _, message = case
    with pytest.raises(RunnerError) as caught:
        evaluate_expr(expression, ENV)
    assert message in str(caught.value)
    assert repr(expression) in str(caught.value)


@pytest.mark.parametrize("expression", UNSUPPORTED)
def test_unsupported_syntax_names_the_expression(expression: str) -> None:
    with pytest.raises(RunnerError) as caught:
        evaluate_expr(expression, ENV)
    assert f"invalid expression {expression!r}" in str(caught.value)


def test_results_land_as_go_would_print_them() -> None:
    assert to_text(evaluate_expr("map([1, 2], # / 2)", ENV)) == "[0.5,1]"
    assert to_text(evaluate_expr("{z: 1, a: [true]}", ENV)) == '{"a":[true],"z":1}'
    assert to_text(evaluate_expr("findIndex(['a'], # == 'a')", ENV)) == "0"
    with pytest.raises(RunnerError, match="cannot be written"):
        to_text(evaluate_expr("float('inf')", ENV))  # encoding/json refuses it, so Argo fails too


def _lanes(shards: list[str], lanes: int, expression: str) -> list[list[str]]:
    out = []
    for lane in range(lanes):
        env = {"inputs": {"parameters": {"shards": json.dumps(shards), "lanes": str(lanes), "lane": str(lane)}}}
        out.append(json.loads(to_text(evaluate_expr(expression, env))))
    return out


SHARDS = st.lists(st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=12), max_size=40)


@settings(max_examples=150, deadline=None)
@given(SHARDS, st.integers(1, 8))
def test_lane_selection_partitions_shards_in_order(shards: list[str], lanes: int) -> None:
    selected = _lanes(shards, lanes, LANE)
    assert sum(len(lane) for lane in selected) == len(shards)  # disjoint and covering, duplicates included
    for lane, picked in enumerate(selected):
        assert picked == shards[lane::lanes]  # lane k holds the shards at k, k+lanes, ... in order
    merged = [selected[i % lanes][i // lanes] for i in range(len(shards))]
    assert merged == shards


@settings(max_examples=25, deadline=None)
@given(SHARDS, st.integers(1, 8))
def test_template_lane_expression_is_refused_as_argo_refuses_it(shards: list[str], lanes: int) -> None:
    with pytest.raises(RunnerError, match=r"unknown pointer #index \(expr-lang v1\.17 defines #index only"):
        _lanes(shards, lanes, TEMPLATE_LANE)


def lanes_workflow(expression: str, shards: list[str], lanes: int) -> str:
    return f"""
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: lanes-}}
spec:
  entrypoint: main
  arguments:
    parameters:
    - {{name: shards, value: '{json.dumps(shards)}'}}
    - {{name: lanes, value: "{lanes}"}}
  templates:
  - name: main
    steps:
    - - name: lane
        template: lane
        withSequence: {{count: "{{{{workflow.parameters.lanes}}}}"}}
        arguments:
          parameters:
          - {{name: shards, value: "{{{{workflow.parameters.shards}}}}"}}
          - {{name: lanes, value: "{{{{workflow.parameters.lanes}}}}"}}
          - {{name: lane, value: "{{{{item}}}}"}}
  - name: lane
    inputs: {{parameters: [{{name: shards}}, {{name: lanes}}, {{name: lane}}]}}
    steps:
    - - name: shard
        template: echo
        withParam: '{{{{={expression}}}}}'
        arguments: {{parameters: [{{name: shard, value: "{{{{item}}}}"}}]}}
  - name: echo
    inputs: {{parameters: [{{name: shard}}]}}
    container: {{image: busybox, command: [sh, -c], args: ["echo {{{{inputs.parameters.shard}}}}"]}}
"""


def _run(tmp_path: Path, text: str) -> tuple[int, dict[str, Any]]:
    path = tmp_path / "lanes.yaml"
    path.write_text(text)
    result = CliRunner().invoke(app, ["run", str(path), "-o", "json", "--workdir", str(tmp_path / "wd")])
    return result.exit_code, json.loads(result.stdout)


def _shard(node: dict[str, Any]) -> str:
    return next(p["value"] for p in node["inputs"]["parameters"] if p["name"] == "shard")


def test_lanes_fan_out_runs_every_shard_exactly_once(tmp_path: Path) -> None:
    shards = [f"s{i:02d}" for i in range(11)] + ["s03"]  # a duplicate shard runs twice, once per position
    code, workflow = _run(tmp_path, lanes_workflow(LANE, shards, 3))
    assert code == 0, workflow["status"].get("message")
    assert workflow["status"]["phase"] == "Succeeded"
    pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
    assert all(n["phase"] == "Succeeded" and n["templateName"] == "echo" for n in pods)
    # Nothing references the pods' results, so (like Argo) none is recorded: the shard is the pod's input.
    assert sorted(_shard(n) for n in pods) == sorted(shards)  # each item ran exactly once
    for lane in range(3):
        mine = [n for n in pods if f".lane({lane}:{lane})" in n["name"]]
        mine.sort(key=lambda n: int(re.match(r"shard\((\d+):", n["displayName"]).group(1)))
        assert [_shard(n) for n in mine] == shards[lane::3]


def test_template_lane_expression_fails_the_run_naming_it(tmp_path: Path) -> None:
    code, workflow = _run(tmp_path, lanes_workflow(TEMPLATE_LANE, ["a", "b", "c"], 2))
    assert code == 1
    assert workflow["status"]["phase"] in ("Failed", "Error")
    messages = " ".join(n.get("message") or "" for n in workflow["status"]["nodes"].values())
    assert "unknown pointer #index" in messages
    assert not [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
