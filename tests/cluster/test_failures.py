"""Failure semantics on Argo's real controller.

The retry cases run our rendered retryStrategy (taken from the rendered batch-inference template,
its backoff shortened from 30 s to 1 s so the test is quick) around a step exiting with a given code.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import json
import os
import signal
from pathlib import Path
from typing import Any

import psutil
import yaml

from pipelines.cluster import workflows
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import Cluster
from tests.fixtures.waiting import wait_until

RENDERED = REPO_ROOT / "argocd" / "workflows" / "local" / "workflowtemplate-batch-inference.yaml"


def rendered_retry() -> dict[str, Any]:
    template = yaml.safe_load(RENDERED.read_text())
    strategies = [t["retryStrategy"] for t in template["spec"]["templates"] if "retryStrategy" in t]
    strategy = copy.deepcopy(strategies[0])
    strategy["backoff"].update(duration="1s", cap="2s", maxDuration="2m")
    return strategy


def workflow(name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    body = {"entrypoint": "main", "serviceAccountName": "kiosk-workflow", "templates": [{"name": "main", **template}]}
    body.update(spec)
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": f"{name}-"},
        "spec": body,
    }


def exits(code: int) -> dict[str, Any]:
    script = f"import sys; print('attempt'); sys.exit({code})"
    return {
        "container": {"image": "python:3.11", "command": ["python", "-c", script]},
        "retryStrategy": rendered_retry(),
    }


def attempts(done: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted((n for n in done["status"]["nodes"].values() if n["type"] == "Pod"), key=lambda n: n["startedAt"])


def test_exit_1_is_retried_with_backoff(cluster: Cluster) -> None:
    done = cluster.run(workflow("exit-one", exits(1)), timeout_s=180)
    assert done["status"]["phase"] == "Failed"
    pods = attempts(done)
    limit = int(rendered_retry()["limit"])
    assert len(pods) == limit + 1
    assert all(p["phase"] == "Failed" and p["outputs"]["exitCode"] == "1" for p in pods)
    retry = next(n for n in done["status"]["nodes"].values() if n["type"] == "Retry")
    assert len(retry["children"]) == limit + 1
    gaps = [_seconds(b["startedAt"]) - _seconds(a["finishedAt"]) for a, b in itertools.pairwise(pods)]
    assert all(gap >= 1 for gap in gaps), gaps  # the backoff was honoured between attempts


def test_exit_2_is_not_retried(cluster: Cluster) -> None:
    done = cluster.run(workflow("exit-two", exits(2)), timeout_s=120)
    assert done["status"]["phase"] == "Failed"
    pods = attempts(done)
    assert [p["outputs"]["exitCode"] for p in pods] == ["2"]


def _sleepers(cluster: Cluster, marker: str) -> list[int]:
    found = []
    for proc in psutil.process_iter(["cmdline", "environ"]):
        try:
            if (proc.info["cmdline"] or [])[-2:] == ["sleep", marker] and (proc.info["environ"] or {}).get(
                "KIOSK_WORKDIR"
            ) == str(cluster.workdir):
                found.append(proc.pid)
        except psutil.Error:
            pass
    return found


def _wait_gone(cluster: Cluster, marker: str, timeout_s: float = 60) -> None:
    wait_until(
        lambda: not _sleepers(cluster, marker), timeout_s, f"the `sleep {marker}` processes to be gone", poll=0.5
    )


def test_template_deadline_fails_the_run_and_kills_its_processes(cluster: Cluster) -> None:
    template = {"activeDeadlineSeconds": 4, "container": {"image": "busybox", "command": ["sleep", "301"]}}
    done = cluster.run(workflow("template-deadline", template), timeout_s=120)
    assert done["status"]["phase"] == "Failed"
    pod = attempts(done)[0]
    assert pod["phase"] in ("Failed", "Error")
    assert "deadline" in (pod.get("message") or "").lower(), pod
    _wait_gone(cluster, "301")


def test_workflow_deadline_fails_the_run_and_kills_its_processes(cluster: Cluster) -> None:
    template = {"container": {"image": "busybox", "command": ["sleep", "302"]}}
    created = cluster.run(workflow("workflow-deadline", template, activeDeadlineSeconds=6), timeout_s=120)
    assert created["status"]["phase"] in ("Failed", "Error")
    assert "deadline" in (created["status"].get("message") or "").lower(), created["status"].get("message")
    _wait_gone(cluster, "302")


def _seconds(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _claims(run_dir: Path) -> dict[str, list[str]]:
    claims: dict[str, list[str]] = {}
    for path in sorted((run_dir / "queue" / "claims").glob("*/g*.json")):
        claims.setdefault(path.parent.name, []).append(path.name)
    return claims


def _output_keys(out_dir: Path) -> list[str]:
    """Every result record's input key: per-shard JSONL records, else per-image result files."""
    shards = sorted((out_dir / "shards").glob("*.jsonl"))
    if shards:
        return [json.loads(line)["key"] for path in shards for line in path.read_text().splitlines() if line.strip()]
    return [str(p.relative_to(out_dir)).rsplit(".", 1)[0] for p in out_dir.rglob("*.json")]


def _lane_process(workflow: str, lane: int) -> int | None:
    """The `python -m steps.infer` process of this workflow's lane (not emissary, its parent)."""
    for proc in psutil.process_iter(["cmdline"]):
        argv = proc.info["cmdline"] or []
        ours = "steps.infer" in argv and f"--lane={lane}" in argv and any(f"/{workflow}" in a for a in argv)
        if ours and "emissary" not in argv:
            return proc.pid
    return None


def test_lane_killed_mid_shard_is_retried_and_every_output_is_written_once(cluster: Cluster) -> None:
    from tests.cluster.test_templates import outputs, synth

    images = synth(cluster, "lane-kill-case")
    inputs = sorted(str(p.relative_to(images)) for p in images.rglob("*.png"))
    out_uri = "file://$KIOSK_WORKDIR/store/outputs/lane-kill-case"
    params = {"input-uri": f"file://{images}", "output-uri": out_uri, "shard-size": "3", "parallelism": "2"}
    created = workflows.create(cluster.api, workflows.from_template("batch-inference", "kiosk-local", params))
    name = created["metadata"]["name"]
    run_dir = cluster.workdir / "store" / "runs" / name

    def kill_an_owner() -> str | None:
        """A shard claimed and not yet done: kill its owner; the shard, once one was killed."""
        for shard, names in _claims(run_dir).items():
            if names == ["g0000.json"]:
                claim = json.loads((run_dir / "queue" / "claims" / shard / "g0000.json").read_text())
                pid = _lane_process(name, int(claim["lane"]))
                if pid is not None:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        return shard
                break
        return None

    victim = wait_until(kill_an_owner, 240, "a lane to be caught mid-shard", poll=0.05)
    done = workflows.wait(cluster.api, "kiosk-local", name, 600)
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    lanes = [
        n for n in done["status"]["nodes"].values() if n["type"] == "Pod" and n["templateName"].startswith("infer")
    ]
    killed = [n for n in lanes if (n.get("outputs") or {}).get("exitCode") == "137" or n["phase"] == "Failed"]
    assert killed, "the killed lane's attempt is not in the status"
    found = outputs(done)
    assert (found["processed"], found["failed"]) == (str(len(inputs)), "0"), found
    assert len(_claims(run_dir)[victim]) > 1  # the shard was taken over (a second generation)
    keys = _output_keys(cluster.workdir / "store" / "outputs" / "lane-kill-case")
    assert len(keys) == len(set(keys)) == len(inputs), (len(keys), len(set(keys)), len(inputs))
