"""Test overlays of the rendered CronWorkflows with a schedule of seconds, created at session start.

- `retention-cleanup-often`: the rendered retention-cleanup
  CronWorkflow (and `older-than=3650d`, so its real deletes touch nothing of the other tests): the
  controller itself must start a run that Succeeds; it stops scheduling after that first success.
- `forbid-overlap`: the same rendered CronWorkflow (concurrencyPolicy: Forbid) whose first run waits
  at a gate (a file in the cluster's workdir the test creates): while it is active, Forbid must keep
  every later tick from starting a run, which the controller counts in its own metrics.

`@every` schedules (robfig/cron's descriptor, which Argo's CRD and validation accept) keep the test
from waiting for the wall clock's next minute.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from pipelines.cluster import kube
from pipelines.tools import REPO_ROOT

EVERY_FEW_SECONDS = ["@every 5s"]
LABEL = "workflows.argoproj.io/cron-workflow"
#: The file, under the pods' $KIOSK_WORKDIR, that lets the first `forbid-overlap` run finish.
GATE = "forbid-overlap.open"


def rendered_cron() -> dict[str, Any]:
    path = REPO_ROOT / "argocd" / "workflows" / "local" / "cronworkflow-retention-cleanup.yaml"
    return yaml.safe_load(path.read_text())


def overlays() -> list[dict[str, Any]]:
    base = rendered_cron()
    assert base["spec"]["concurrencyPolicy"] == "Forbid"
    every = copy.deepcopy(base)
    every["metadata"]["name"] = "retention-cleanup-often"
    every["spec"]["schedules"] = EVERY_FEW_SECONDS
    every["spec"]["stopStrategy"] = {"expression": "cronworkflow.succeeded >= 1"}
    every["spec"]["startingDeadlineSeconds"] = 60
    # It runs for real (dry-run=false) on the store other tests use: an age nothing there reaches.
    for param in every["spec"]["workflowSpec"]["arguments"]["parameters"]:
        if param["name"] == "older-than":
            param["value"] = "3650d"
    params = every["spec"]["workflowSpec"]["arguments"]["parameters"]
    if not any(p["name"] == "older-than" for p in params):
        params.append({"name": "older-than", "value": "3650d"})
    forbid = copy.deepcopy(base)
    forbid["metadata"]["name"] = "forbid-overlap"
    forbid["spec"]["schedules"] = EVERY_FEW_SECONDS
    forbid["spec"]["stopStrategy"] = {"expression": "cronworkflow.succeeded >= 1"}  # once the gate is open
    spec = forbid["spec"]["workflowSpec"]
    spec.pop("workflowTemplateRef", None)
    spec.pop("arguments", None)
    spec.pop("synchronization", None)  # the mutex would serialise it with the other overlay: test Forbid alone
    spec["entrypoint"] = "sleep"
    spec.setdefault("serviceAccountName", "kiosk-workflow")
    wait = f'until [ -e "$KIOSK_WORKDIR/{GATE}" ]; do sleep 0.2; done'
    spec["templates"] = [{"name": "sleep", "container": {"image": "busybox", "command": ["sh", "-c", wait]}}]
    return [every, forbid]


def create(cluster: Any) -> None:
    docs = overlays()
    rejected = [r for r in kube.apply(cluster.dynamic, docs, namespace="kiosk-local") if r.result == "rejected"]
    assert not rejected, rejected


def open_gate(workdir: Path) -> None:
    """Let the gated `forbid-overlap` run finish (the pods' $KIOSK_WORKDIR is the cluster's workdir)."""
    (workdir / GATE).touch()
