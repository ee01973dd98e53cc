"""Fidelity: run argoproj/argo-workflows' own examples (from the pinned Go module) through the runner.

Oracle (test/e2e/examples_test.go upstream): every example without the
`workflows.argoproj.io/no-test` label must Succeed. Examples are *discovered* by a rule over the
parsed YAML (only busybox/alpine/python images running echo/sh/bash/python), minus an explicit
exclusion list in which every entry gives its reason. Node structure (which nodes ran, were
Skipped or Omitted, and in which order) is checked against what the manifests say Argo does.
"""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.runner import api
from pipelines.runner.errors import RunnerError, UnsupportedFeature
from tests.fixtures.upstream_examples import (
    EXCLUDED,
    RANDOM_PHASE,
    RUN_ANYWAY,
    UNSUPPORTED,
    discover,
    examples_dir,
    library,
)
from tests.runner.stdout import printed


@pytest.fixture(scope="session")
def example_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every selected example, run once, a few at a time (nodes are processes; threads just wait)."""
    root = examples_dir()
    selected, _ = discover()
    workdir = tmp_path_factory.mktemp("examples")

    def one(rel: str) -> tuple[str, Any]:
        path = root / rel
        try:
            workflow_run = api.prepare(str(path), env=None, files=library(path), workdir=workdir)
            return rel, (workflow_run.run(), workflow_run.status.events, workflow_run.run_dir)
        except RunnerError as error:
            return rel, error

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, selected))


def test_rule_selects_enough_examples() -> None:
    selected, skipped = discover()
    no_label = [r for r in selected if r not in RUN_ANYWAY]
    assert len(no_label) >= 15, selected
    for rel, reason in skipped.items():
        assert reason.strip(), rel
    stale = set(EXCLUDED) - set(skipped)
    assert not stale, f"exclusions that no longer match an example: {stale}"


@pytest.mark.parametrize("rel", [r for r, reason in EXCLUDED.items() if reason.startswith(UNSUPPORTED)])
def test_unsupported_examples_are_refused_naming_the_feature(rel: str, tmp_path: Path) -> None:
    path = examples_dir() / rel
    with pytest.raises(UnsupportedFeature) as caught:
        api.prepare(str(path), env=None, files=library(path), workdir=tmp_path)
    feature = EXCLUDED[rel].removeprefix(UNSUPPORTED)
    assert feature in str(caught.value)
    assert "template" in str(caught.value)


def test_examples_without_no_test_label_succeed(example_runs: dict[str, Any]) -> None:
    failures = {}
    for rel, outcome in example_runs.items():
        if rel in RUN_ANYWAY:
            continue
        if isinstance(outcome, Exception):
            failures[rel] = str(outcome)
        elif rel in RANDOM_PHASE:  # it ran to an end either way: its retries, then their last exit
            if outcome[0]["status"]["phase"] not in ("Succeeded", "Failed"):
                failures[rel] = outcome[0]["status"].get("message", "")
        elif outcome[0]["status"]["phase"] != "Succeeded":
            failures[rel] = outcome[0]["status"].get("message", "")
    assert not failures


def _by_display(workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n["displayName"]: n for n in workflow["status"]["nodes"].values()}


def _before(events: list[tuple[str, str]], first: str, then: str) -> bool:
    """`first` finished before `then` started."""
    return events.index(("finish", first)) < events.index(("start", then))


def _outcome(example_runs: dict[str, Any], rel: str) -> tuple[dict[str, Any], list, dict[str, dict[str, Any]]]:
    outcome = example_runs[rel]
    assert not isinstance(outcome, Exception), outcome
    return outcome[0], outcome[1], _by_display(outcome[0])


def _printed(example_runs: dict[str, Any], rel: str, node: dict[str, Any]) -> str:
    return printed(example_runs[rel][2], node)


def test_steps_run_groups_in_order(example_runs: dict[str, Any]) -> None:
    _, events, nodes = _outcome(example_runs, "steps.yaml")
    assert {n: nodes[n]["phase"] for n in ("hello1", "hello2a", "hello2b")} == dict.fromkeys(
        ("hello1", "hello2a", "hello2b"), "Succeeded"
    )
    assert nodes["[0]"]["type"] == "StepGroup"
    assert _before(events, nodes["hello1"]["id"], nodes["hello2a"]["id"])
    assert _before(events, nodes["hello1"]["id"], nodes["hello2b"]["id"])
    assert _printed(example_runs, "steps.yaml", nodes["hello2a"]) == "hello2a"
    assert "result" not in nodes["hello2a"]["outputs"]  # nothing references it: Argo records none


def test_dag_diamond_order(example_runs: dict[str, Any]) -> None:
    _, events, nodes = _outcome(example_runs, "dag-diamond.yaml")
    ids = {k: nodes[k]["id"] for k in "ABCD"}
    for first, then in ("AB", "AC", "BD", "CD"):
        assert _before(events, ids[first], ids[then])
    assert nodes["A"]["children"] == [ids["B"], ids["C"]] or sorted(nodes["A"]["children"]) == sorted(
        [ids["B"], ids["C"]]
    )


def test_enhanced_depends(example_runs: dict[str, Any]) -> None:
    workflow, _, nodes = _outcome(example_runs, "dag-enhanced-depends.yaml")
    phases = {k: v["phase"] for k, v in nodes.items() if v["type"] != "DAG"}
    assert phases == {
        "A": "Succeeded",
        "B": "Succeeded",
        "C": "Failed",
        "should-execute-1": "Succeeded",
        "should-execute-2": "Succeeded",
        "should-not-execute": "Omitted",
        "should-execute-3": "Succeeded",
    }
    assert workflow["status"]["phase"] == "Succeeded"


def test_dag_target_runs_only_what_the_target_needs(example_runs: dict[str, Any]) -> None:
    _, _, nodes = _outcome(example_runs, "dag-targets.yaml")
    assert sorted(k for k, v in nodes.items() if v["type"] == "Pod") == ["A", "C", "E"]


def test_coinflip_skips_the_other_side(example_runs: dict[str, Any]) -> None:
    _, _, nodes = _outcome(example_runs, "coinflip.yaml")
    side = nodes["flip-coin"]["outputs"]["result"]
    other = {"heads": "tails", "tails": "heads"}[side]
    assert nodes[side]["phase"] == "Succeeded"
    assert nodes[other]["phase"] == "Skipped"
    assert nodes[other]["message"] == f"when '{side} == {other}' evaluated false"


def test_parameter_aggregation_and_private_tmp(example_runs: dict[str, Any]) -> None:
    # Four parallel pods write /tmp/num and /tmp/even: each must read back its own value.
    _, _, nodes = _outcome(example_runs, "parameter-aggregation-dag.yaml")
    for index, num in enumerate((1, 2, 3, 4)):
        outputs = {p["name"]: p["value"] for p in nodes[f"odd-or-even({index}:{num})"]["outputs"]["parameters"]}
        assert outputs == {"num": str(num), "evenness": "even" if num % 2 == 0 else "odd"}
    assert _printed(example_runs, "parameter-aggregation-dag.yaml", nodes["print-nums"]) == '["1","2","3","4"]'
    assert nodes["divide-by-2(0:evenness:odd,num:1)"]["phase"] == "Skipped"
    assert nodes["divide-by-2"]["type"] == "TaskGroup"
    prints = [n for k, n in nodes.items() if k.startswith("print(")]
    assert sorted(_printed(example_runs, "parameter-aggregation-dag.yaml", n) for n in prints) == ["1", "2"]


def test_continue_on_failed_step(example_runs: dict[str, Any]) -> None:
    workflow, _events, nodes = _outcome(example_runs, "continue-on-fail.yaml")
    assert nodes["C"]["phase"] == "Failed"
    assert nodes["D"]["phase"] == "Succeeded"
    assert workflow["status"]["phase"] == "Succeeded"  # upstream TestContinueOnFail


def test_dag_failed_branch_omits_and_fails(example_runs: dict[str, Any]) -> None:
    workflow, _, nodes = _outcome(example_runs, "dag-continue-on-fail.yaml")
    # failFast (the default) stops scheduling once a target branch failed, so whether D (B.Failed && C)
    # ran depends on timing, as on a cluster; what ran must be right.
    assert nodes.get("D", {"phase": "Succeeded"})["phase"] == "Succeeded"
    assert nodes["B"]["phase"] == nodes["E"]["phase"] == "Failed"
    assert nodes.get("G", {"phase": "Omitted"})["phase"] == "Omitted"
    assert workflow["status"]["phase"] == "Failed"


def test_exit_handler_sees_workflow_status(example_runs: dict[str, Any]) -> None:
    workflow, events, nodes = _outcome(example_runs, "exit-handlers.yaml")
    assert workflow["status"]["phase"] == "Failed"
    assert nodes["cry"]["phase"] == "Succeeded"
    assert nodes["celebrate"]["phase"] == "Skipped"
    assert "Failed" in _printed(example_runs, "exit-handlers.yaml", nodes["notify"])
    assert _before(
        events,
        nodes["intentional-fail"]["id"] if "intentional-fail" in nodes else workflow["metadata"]["name"],
        nodes["notify"]["id"],
    )


def test_expression_closures_reuse_a_verbose_snippet(example_runs: dict[str, Any]) -> None:
    # map(...) over a one-element list aliases the decoded temperatures as `#` (expr-lang closures).
    _, _, nodes = _outcome(example_runs, "expression-reusing-verbose-snippets.yaml")
    (pod,) = [n for n in nodes.values() if n["type"] == "Pod"]
    doc = yaml.safe_load((examples_dir() / "expression-reusing-verbose-snippets.yaml").read_text())
    weather = json.loads(doc["spec"]["arguments"]["parameters"][0]["value"])
    temps = json.loads(base64.b64decode(weather["weekWeather"]))["temps"]
    average = sum(temps) / len(temps)
    assert _printed(example_runs, "expression-reusing-verbose-snippets.yaml", pod) == (
        f"The week's average temperature was {average:g} with a minimum of {min(temps)} and a maximum of {max(temps)}."
    )
