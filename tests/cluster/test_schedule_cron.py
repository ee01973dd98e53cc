"""CronWorkflows on the real controller: the overlays (tests/cluster/cron_overlays.py) were created
when the session's cluster came up, so the controller's clock ran while the other tests did.
"""

from __future__ import annotations

import urllib.request

from kubernetes import client as k8s

from pipelines.cluster import controlplane
from tests.cluster import cron_overlays
from tests.cluster.conftest import NAMESPACE, Cluster
from tests.fixtures.waiting import wait_until

GROUP = ("argoproj.io", "v1alpha1", NAMESPACE, "workflows")
#: Generous: the controller starts runs on its own clock, on a machine shared with the other tests.
TIMEOUT_S = 300
FORBID_METRIC = "argo_workflows_cronworkflows_concurrencypolicy_triggered"


def _runs(cluster: Cluster, cron: str) -> list[dict]:
    found = k8s.CustomObjectsApi(cluster.api).list_namespaced_custom_object(
        *GROUP, label_selector=f"{cron_overlays.LABEL}={cron}"
    )
    return sorted(found["items"], key=lambda w: w["metadata"]["creationTimestamp"])


def _phase(workflow: dict) -> str:
    return (workflow.get("status") or {}).get("phase", "")


def _forbidden_ticks(cluster: Cluster, cron: str) -> float:
    """How often the controller says Forbid kept `cron` from starting a run (its own counter)."""
    with urllib.request.urlopen(controlplane.metrics_url(cluster.state), timeout=10) as response:
        lines = response.read().decode().splitlines()
    mine = [ln for ln in lines if ln.startswith(FORBID_METRIC) and f'name="{cron}"' in ln and "Forbid" in ln]
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in mine)


def test_a_schedule_is_started_by_the_controller_and_succeeds(cluster: Cluster) -> None:
    name = "retention-cleanup-often"
    wait_until(lambda: any(_phase(w) == "Succeeded" for w in _runs(cluster, name)), TIMEOUT_S, f"a run of {name}")
    run = next(w for w in _runs(cluster, name) if _phase(w) == "Succeeded")
    assert run["spec"]["workflowTemplateRef"]["name"] == "retention-cleanup"
    assert {p["name"]: p["value"] for p in run["spec"]["arguments"]["parameters"]}["dry-run"] == "false"


def test_forbid_keeps_a_second_run_from_overlapping(cluster: Cluster) -> None:
    name = "forbid-overlap"
    try:
        (first,) = wait_until(lambda: _runs(cluster, name), TIMEOUT_S, f"the first run of {name}")
        # The first run waits at its gate; the controller's next ticks must each be refused.
        wait_until(lambda: _forbidden_ticks(cluster, name) >= 2, TIMEOUT_S, f"Forbid to refuse ticks of {name}")
        runs = _runs(cluster, name)
        assert [w["metadata"]["name"] for w in runs] == [first["metadata"]["name"]]
        assert _phase(runs[0]) in ("", "Pending", "Running")
    finally:
        cron_overlays.open_gate(cluster.workdir)
    wait_until(lambda: _phase(_runs(cluster, name)[0]) == "Succeeded", TIMEOUT_S, "the gated run to succeed")
