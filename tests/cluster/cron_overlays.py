"""Test overlays of the rendered CronWorkflows with a one-minute schedule, created at session start.

- `retention-cleanup-every-minute`: the rendered retention-cleanup CronWorkflow, every minute (and
  `older-than=3650d`, so its real deletes touch nothing of the other tests): the controller itself
  must start a run that Succeeds.
- `forbid-overlap`: the same rendered CronWorkflow (concurrencyPolicy: Forbid), every minute, with a
  workflowSpec that outlives the next tick: Forbid must keep a second run from starting.
"""

from __future__ import annotations

import copy
import time
from typing import Any

import yaml

from pipelines.cluster import kube
from pipelines.tools import REPO_ROOT

EVERY_MINUTE = ["* * * * *"]
SLEEP_S = 75
LABEL = "workflows.argoproj.io/cron-workflow"
created_at: dict[str, float] = {}


def rendered_cron() -> dict[str, Any]:
    path = REPO_ROOT / "argocd" / "workflows" / "local" / "cronworkflow-retention-cleanup.yaml"
    return yaml.safe_load(path.read_text())


def overlays() -> list[dict[str, Any]]:
    base = rendered_cron()
    assert base["spec"]["concurrencyPolicy"] == "Forbid"
    every = copy.deepcopy(base)
    every["metadata"]["name"] = "retention-cleanup-every-minute"
    every["spec"]["schedules"] = EVERY_MINUTE
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
    forbid["spec"]["schedules"] = EVERY_MINUTE
    spec = forbid["spec"]["workflowSpec"]
    spec.pop("workflowTemplateRef", None)
    spec.pop("arguments", None)
    spec.pop("synchronization", None)  # the mutex would serialise it with the other overlay: test Forbid alone
    spec["entrypoint"] = "sleep"
    spec.setdefault("serviceAccountName", "kiosk-workflow")
    spec["templates"] = [{"name": "sleep", "container": {"image": "busybox", "command": ["sleep", str(SLEEP_S)]}}]
    return [every, forbid]


def create(cluster: Any) -> None:
    docs = overlays()
    rejected = [r for r in kube.apply(cluster.dynamic, docs, namespace="kiosk-local") if r.result == "rejected"]
    assert not rejected, rejected
    now = time.time()
    for doc in docs:
        created_at[doc["metadata"]["name"]] = now
