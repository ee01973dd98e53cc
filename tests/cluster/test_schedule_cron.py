"""CronWorkflows on the real controller: the overlays (tests/cluster/cron_overlays.py) were created
when the session's cluster came up, so the controller's clock ran while the other tests did.
"""

from __future__ import annotations

import time

from tests.cluster import cron_overlays
from tests.cluster.conftest import NAMESPACE, Cluster

GROUP = ("argoproj.io", "v1alpha1", NAMESPACE, "workflows")


def _runs(cluster: Cluster, cron: str) -> list[dict]:
    from kubernetes import client as k8s

    found = k8s.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        *GROUP, label_selector=f"{cron_overlays.LABEL}={cron}"
    )
    return sorted(found["items"], key=lambda w: w["metadata"]["creationTimestamp"])


def _wait(condition, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(1)


def test_one_minute_schedule_is_started_by_the_controller_and_succeeds(cluster: Cluster) -> None:
    name = "retention-cleanup-every-minute"
    left = cron_overlays.created_at[name] + 150 - time.time()
    _wait(lambda: any((w.get("status") or {}).get("phase") == "Succeeded" for w in _runs(cluster, name)), max(left, 5))
    run = next(w for w in _runs(cluster, name) if w["status"]["phase"] == "Succeeded")
    assert run["spec"]["workflowTemplateRef"]["name"] == "retention-cleanup"
    assert {p["name"]: p["value"] for p in run["spec"]["arguments"]["parameters"]}["dry-run"] == "false"


def test_forbid_keeps_a_second_run_from_overlapping(cluster: Cluster) -> None:
    name = "forbid-overlap"
    # First run starts within a minute; it sleeps past the next tick. Wait until that tick is over.
    _wait(lambda: bool(_runs(cluster, name)), max(cron_overlays.created_at[name] + 90 - time.time(), 5))
    first = _runs(cluster, name)[0]
    started = first["metadata"]["creationTimestamp"]
    tick_passed = _seconds(started) + 65
    _wait(lambda: time.time() > tick_passed, max(tick_passed - time.time() + 5, 5))
    runs = _runs(cluster, name)
    first = runs[0]  # fresh: it may have finished meanwhile
    finished = [w for w in runs if (w.get("status") or {}).get("phase") in ("Succeeded", "Failed", "Error")]
    overlapping = [w for w in runs[1:] if _seconds(w["metadata"]["creationTimestamp"]) < _finished_at(first)]
    assert not overlapping, [w["metadata"]["name"] for w in runs]
    assert len(runs) - len(finished) <= 1


def _finished_at(workflow: dict) -> float:
    stamp = (workflow.get("status") or {}).get("finishedAt")
    return _seconds(stamp) if stamp else float("inf")


def _seconds(stamp: str) -> float:
    import datetime as dt

    return dt.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
