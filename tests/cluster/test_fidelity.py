"""Differential fidelity: every upstream example the runner's fidelity tests run through `kiosk run`
(tests/runner/test_upstream_examples.py) also runs on Argo's real controller; the workflow phase and
each node's (display name, type, phase, outputs) are compared. Known differences are listed in
MISMATCHES with their reason; anything else fails. The counts are printed (`pytest -s`) and written
to <workdir>/fidelity.json.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from pipelines.cluster import kube, workflows
from pipelines.runner import api as runner
from pipelines.runner.errors import RunnerError
from tests.cluster.conftest import Cluster
from tests.runner import test_upstream_examples as upstream

NAMESPACE = "fidelity"
#: Examples whose outcome differs between the engines on purpose (random choices, clocks).
NONDETERMINISTIC = {
    "coinflip.yaml": "random coin",
    "coinflip-recursive.yaml": "random coin",
    "retry-with-steps.yaml": "random exit codes",
    "retry-script.yaml": "random exit codes",
    "dag-coinflip.yaml": "random coin",
    "scripts-python.yaml": "random number",
    "scripts-bash.yaml": "random number",
    "scripts-javascript.yaml": "random number",
}
#: (example, display name) -> why the local runner differs from the real controller.
MISMATCHES: dict[tuple[str, str], str] = {}


def _namespace(cluster: Cluster) -> None:
    core, rbac = k8s.CoreV1Api(cluster.api), k8s.RbacAuthorizationV1Api(cluster.api)
    kube.apply(
        cluster.dynamic,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
            {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default", "namespace": NAMESPACE}},
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "Role",
                "metadata": {"name": "executor", "namespace": NAMESPACE},
                "rules": [
                    {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
                ],
            },
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "executor", "namespace": NAMESPACE},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "executor"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": NAMESPACE}],
            },
        ],
    )
    del core, rbac


def _library_templates(path: Path) -> list[dict[str, Any]]:
    docs = []
    for sibling in upstream._library(path):
        for doc in yaml.safe_load_all(sibling.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("WorkflowTemplate", "ClusterWorkflowTemplate"):
                docs.append(doc)
    return docs


#: At most this many examples run on the cluster at once (2 cores: init + wait + main per pod).
AT_ONCE = 6
#: One example's budget on the real controller; past it the outcome is recorded as a timeout.
EXAMPLE_TIMEOUT_S = 150


def _manifest(path: Path) -> dict[str, Any]:
    doc = next(d for d in yaml.safe_load_all(path.read_text()) if isinstance(d, dict) and d.get("kind") == "Workflow")
    doc["metadata"]["namespace"] = NAMESPACE
    return doc


def _on_argo(cluster: Cluster, selected: list[str]) -> dict[str, Any]:
    root = upstream.examples_dir()
    library = {d["kind"] + "/" + d["metadata"]["name"]: d for rel in selected for d in _library_templates(root / rel)}
    if library:
        kube.apply(cluster.dynamic, list(library.values()), namespace=NAMESPACE)
    queue, running, done = list(selected), {}, {}
    while queue or running:
        while queue and len(running) < AT_ONCE:
            rel = queue.pop(0)
            try:
                running[rel] = (
                    workflows.create(cluster.api, _manifest(root / rel))["metadata"]["name"],
                    time.monotonic(),
                )
            except Exception as error:  # a rejection by the apiserver is an outcome too
                done[rel] = error
        for rel, (name, started) in list(running.items()):
            wf = workflows.get(cluster.api, NAMESPACE, name)
            if (wf.get("status") or {}).get("phase") in workflows.DONE:
                done[rel] = wf
            elif time.monotonic() - started > EXAMPLE_TIMEOUT_S:
                done[rel] = TimeoutError(
                    f"{rel} still {(wf.get('status') or {}).get('phase')} after {EXAMPLE_TIMEOUT_S} s"
                )
            else:
                continue
            del running[rel]
        time.sleep(1)
    return done


def _locally(workdir: Path, selected: list[str]) -> dict[str, Any]:
    root = upstream.examples_dir()

    def one(rel: str) -> tuple[str, Any]:
        path = root / rel
        try:
            return rel, runner.prepare(str(path), env=None, files=upstream._library(path), workdir=workdir).run()
        except RunnerError as error:
            return rel, error

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(pool.map(one, selected))


def _nodes(workflow: dict[str, Any]) -> dict[str, tuple]:
    name = workflow["metadata"]["name"]
    out = {}
    for node in (workflow.get("status") or {}).get("nodes", {}).values():
        display = node["displayName"].replace(name, "<wf>")
        outputs = node.get("outputs") or {}
        params = tuple(sorted((p["name"], p.get("value")) for p in outputs.get("parameters") or []))
        result = outputs.get("result")
        key = display
        while key in out:
            key += "'"
        out[key] = (node["type"], node["phase"], params, result, outputs.get("exitCode"))
    return out


def compare(local: Any, argo: Any) -> list[str]:
    if isinstance(local, Exception) or isinstance(argo, Exception):
        return [f"local: {local}" if isinstance(local, Exception) else f"argo: {argo}"]
    diffs = []
    if local["status"]["phase"] != argo["status"]["phase"]:
        diffs.append(f"workflow phase local {local['status']['phase']} argo {argo['status']['phase']}")
    mine, theirs = _nodes(local), _nodes(argo)
    for key in sorted(set(mine) | set(theirs)):
        if mine.get(key) != theirs.get(key):
            diffs.append(f"{key}: local {mine.get(key)} argo {theirs.get(key)}")
    return diffs


@pytest.fixture(scope="module")
def outcomes(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Any]]:
    selected, _ = upstream.discover()
    _namespace(cluster)
    argo = _on_argo(cluster, selected)
    local = _locally(tmp_path_factory.mktemp("fidelity-local"), selected)
    return {rel: (local.get(rel), argo.get(rel)) for rel in selected}


@pytest.mark.timeout(1800)
def test_upstream_examples_agree_with_the_real_controller(
    outcomes: dict[str, tuple[Any, Any]], cluster: Cluster
) -> None:
    report = {rel: compare(local, argo) for rel, (local, argo) in outcomes.items()}
    same_phase = [
        rel
        for rel, (local, argo) in outcomes.items()
        if isinstance(local, dict) and isinstance(argo, dict) and local["status"]["phase"] == argo["status"]["phase"]
    ]
    identical = [rel for rel, diffs in report.items() if not diffs]
    summary = {
        "examples": len(outcomes),
        "timeouts": [rel for rel, (_, argo) in outcomes.items() if isinstance(argo, TimeoutError)],
        "same_workflow_phase": len(same_phase),
        "identical_nodes": len(identical),
        "argo_succeeded": sum(
            1 for _, a in outcomes.values() if isinstance(a, dict) and a["status"]["phase"] == "Succeeded"
        ),
        "differences": {rel: diffs for rel, diffs in report.items() if diffs},
    }
    (cluster.workdir / "fidelity.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: v for k, v in summary.items() if k != "differences"}))
    unexplained = {
        rel: [d for d in diffs if not any(d.startswith(f"{name}:") for (ex, name) in MISMATCHES if ex == rel)]
        for rel, diffs in report.items()
        if diffs and rel not in NONDETERMINISTIC
    }
    unexplained = {rel: diffs for rel, diffs in unexplained.items() if diffs}
    assert not unexplained, json.dumps(unexplained, indent=1)[:6000]


def test_the_comparison_can_fail() -> None:
    wf = {
        "metadata": {"name": "w"},
        "status": {"phase": "Succeeded", "nodes": {"a": {"displayName": "x", "type": "Pod", "phase": "Succeeded"}}},
    }
    other = json.loads(json.dumps(wf))
    other["status"]["nodes"]["a"]["phase"] = "Failed"
    assert compare(wf, wf) == [] and compare(wf, other)


_ = re
