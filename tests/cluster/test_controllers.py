"""kube-controller-manager and kube-scheduler make the local cluster behave like any other: a new
namespace gets its `default` ServiceAccount and `kube-root-ca.crt`, the scheduler binds each pod to
the node, and deleting a Workflow deletes its pods (the garbage collector follows ownerReferences).
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from kubernetes import client as k8s

from pipelines.cluster.agent.kubelet import NODE_NAME
from tests.cluster.conftest import Cluster, container_workflow, default_service_account, executor_namespace
from tests.fixtures.waiting import wait_until

NAMESPACE = "controllers"


@pytest.fixture(scope="module")
def finished(cluster: Cluster) -> dict[str, Any]:
    """A one-pod Workflow that Succeeded, its pod kept (upstream-style: no podGC)."""
    executor_namespace(cluster.dynamic, NAMESPACE)
    done = cluster.run(container_workflow("controllers-", NAMESPACE, ["echo", "hello"]))
    assert done["status"]["phase"] == "Succeeded", done["status"]
    return done


def _pods(core: k8s.CoreV1Api, workflow: dict[str, Any]) -> list[Any]:
    selector = f"workflows.argoproj.io/workflow={workflow['metadata']['name']}"
    return list(core.list_namespaced_pod(NAMESPACE, label_selector=selector).items)


def test_namespace_fresh_gets_default_service_account(cluster: Cluster) -> None:
    core = k8s.CoreV1Api(cluster.api)
    name = f"fresh-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        wait_until(lambda: default_service_account(core, name), 60, f"the default ServiceAccount in {name}")
        found = wait_until(
            lambda: core.list_namespaced_config_map(name, field_selector="metadata.name=kube-root-ca.crt").items,
            60,
            f"kube-root-ca.crt in {name}",
        )
        assert "BEGIN CERTIFICATE" in found[0].data["ca.crt"]
    finally:
        core.delete_namespace(name)


def test_pod_bound_by_scheduler(cluster: Cluster, finished: dict[str, Any]) -> None:
    core = k8s.CoreV1Api(cluster.api)
    (pod,) = _pods(core, finished)
    assert pod.spec.node_name == NODE_NAME
    events = core.list_namespaced_event(NAMESPACE, field_selector=f"involvedObject.name={pod.metadata.name}").items
    scheduled = [e for e in events if e.reason == "Scheduled"]
    assert scheduled, [(e.reason, e.message) for e in events]
    assert f"to {NODE_NAME}" in scheduled[0].message
    assert "default-scheduler" in {scheduled[0].reporting_component, scheduled[0].source.component}


def test_workflow_deleted_deletes_its_pods(cluster: Cluster, finished: dict[str, Any]) -> None:
    core = k8s.CoreV1Api(cluster.api)
    (pod,) = _pods(core, finished)
    assert [ref.kind for ref in pod.metadata.owner_references] == ["Workflow"]
    custom = k8s.CustomObjectsApi(cluster.api)
    custom.delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", NAMESPACE, "workflows", finished["metadata"]["name"]
    )
    wait_until(lambda: not _pods(core, finished), 120, "the garbage collector to delete the Workflow's pod")
