"""The dashboards' ConfigMaps, the PrometheusRule and the GPU capacity objects of every env pass
`--dry-run=server` on the real kube-apiserver, with the pinned Karpenter and Prometheus-operator
CRDs installed: the API server's own validation, CEL rules (`x-kubernetes-validations`) included,
which the lint's JSON schemas leave out.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from pipelines import render
from pipelines.cluster import kube
from pipelines.cluster.cli_apply import ensure_namespace
from pipelines.config import ENVIRONMENTS, load_config
from pipelines.lint import crds
from tests.cluster.conftest import Cluster
from tests.fixtures.waiting import wait_until

CRD_SOURCES = (crds.KARPENTER, crds.PROMETHEUS_OPERATOR)


def _docs(files: dict) -> list[dict]:
    return [doc for text in files.values() if text.startswith("#") for doc in yaml.safe_load_all(text) if doc]


@pytest.fixture(scope="module")
def operations_crds(cluster: Cluster) -> Cluster:
    definitions = [
        yaml.safe_load((crds.module_dir(source) / name).read_text()) for source in CRD_SOURCES for name in source.files
    ]
    applied = kube.apply(cluster.dynamic, definitions)
    assert not [r for r in applied if r.result == "rejected"], applied
    resource = cluster.dynamic.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")

    def established(name: str) -> bool:
        conditions = resource.get(name=name).to_dict().get("status", {}).get("conditions") or []
        return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)

    for crd in definitions:
        name = crd["metadata"]["name"]
        wait_until(lambda name=name: established(name), 60, f"{name} to become Established", poll=0.2)
    return cluster


def _namespaces(docs: list[dict], env: str) -> set[str]:
    return {d["metadata"]["namespace"] for d in docs if d["metadata"].get("namespace")} | {load_config(env).namespace}


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_operations_objects_pass_server_side_dry_run(operations_crds: Cluster, env: str) -> None:
    docs = _docs(render.render_observability(env)) + _docs(render.render_cluster(env))
    dynamic = operations_crds.dynamic  # a fresh discovery: it knows the new kinds
    for namespace in _namespaces(docs, env):
        ensure_namespace(dynamic, namespace, dry_run=False)
    results = kube.apply(dynamic, docs, dry_run=True, namespace=load_config(env).namespace)
    assert len(results) == len(docs) > 0
    assert not [(r.kind, r.name, r.message) for r in results if r.result == "rejected"]


def test_cel_rules_reject_what_the_schema_lets_through(operations_crds: Cluster) -> None:
    # A restricted requirement key: valid JSON schema, rejected by the NodePool CRD's CEL rules.
    pool = next(d for d in _docs(render.render_cluster("dev")) if d["kind"] == "NodePool")
    bad = copy.deepcopy(pool)
    bad["spec"]["template"]["spec"]["requirements"].append(
        {"key": "karpenter.sh/nodepool", "operator": "In", "values": ["other"]}
    )
    assert crds.validate(bad) == []
    result = kube.apply(operations_crds.dynamic, [bad], dry_run=True)[0]
    assert result.result == "rejected", result
    assert "restricted" in result.message or "karpenter.sh/nodepool" in result.message, result.message
