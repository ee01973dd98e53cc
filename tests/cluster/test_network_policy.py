"""The serving chart's NetworkPolicy on the local cluster's API server.

The local node's CNI (the bridge plugin) does not enforce NetworkPolicy and no policy controller
runs (docs/cluster.md says so), so all that is shown here is what a cloud cluster's API server does
first: it accepts the policy the chart renders, as a server-side dry run that stores nothing.
"""

from __future__ import annotations

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import Cluster

GOLDEN = REPO_ROOT / "tests" / "chart" / "golden" / "serving.yaml"  # helm's render, checked in tests/chart


def _policy() -> dict:
    found = [d for d in yaml.safe_load_all(GOLDEN.read_text()) if d and d["kind"] == "NetworkPolicy"]
    assert len(found) == 1, f"{GOLDEN} renders {len(found)} NetworkPolicies"
    return found[0]


def test_network_policy_is_accepted_by_the_api_server(cluster: Cluster):
    policy = _policy()
    namespace = "kiosk-network-policy"
    core = k8s.CoreV1Api(cluster.api)
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        policy["metadata"]["namespace"] = namespace
        net = k8s.NetworkingV1Api(cluster.api)
        accepted = net.create_namespaced_network_policy(namespace, policy, dry_run="All")
        assert accepted.spec.policy_types == ["Ingress", "Egress"]
        assert [p.port for rule in accepted.spec.ingress for p in rule.ports] == ["http", "grpc", "metrics"]
        assert not net.list_namespaced_network_policy(namespace).items  # a dry run stores nothing
    finally:
        core.delete_namespace(namespace)


def test_network_policy_with_a_bad_port_is_refused(cluster: Cluster):
    """The same validation a cloud API server applies: the test can fail."""
    policy = _policy()
    policy["metadata"]["namespace"] = "default"
    policy["spec"]["ingress"][0]["ports"][0]["port"] = 70000
    net = k8s.NetworkingV1Api(cluster.api)
    with pytest.raises(ApiException) as refused:
        net.create_namespaced_network_policy("default", policy, dry_run="All")
    assert refused.value.status == 422 and "70000" in refused.value.body
