"""The rendered tree of every env (and argocd/apps) passes `--dry-run=server` on the real apiserver,
with Argo's full CRDs and argo-cd's installed: zero rejections. A broken object is rejected.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from pipelines import render
from pipelines.cluster import kube
from pipelines.cluster.cli_apply import ensure_namespace, env_documents
from pipelines.config import ENVIRONMENTS, load_config
from tests.cluster.conftest import Cluster


def _apps() -> list[dict]:
    return [doc for text in render.render_apps().values() for doc in yaml.safe_load_all(text) if doc]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_env_passes_server_side_dry_run(cluster: Cluster, env: str) -> None:
    namespace, docs = env_documents(env)
    # Namespaces are created for real: a dry run cannot create what the objects then live in.
    ensure_namespace(cluster.dynamic, namespace, dry_run=False)
    results = kube.apply(cluster.dynamic, docs, dry_run=True, namespace=namespace)
    assert len(results) == len(docs) > 0
    rejected = [(r.kind, r.name, r.message) for r in results if r.result == "rejected"]
    assert not rejected


def test_apps_pass_server_side_dry_run(cluster: Cluster) -> None:
    docs = _apps()
    argocd = load_config("local").gitops.argocd_namespace
    ensure_namespace(cluster.dynamic, argocd, dry_run=False)
    kinds = {doc["kind"] for doc in docs}
    assert {"AppProject", "Application"} <= kinds
    results = kube.apply(cluster.dynamic, docs, dry_run=True, namespace=argocd)
    assert not [(r.kind, r.name, r.message) for r in results if r.result == "rejected"]


def test_schema_violations_are_rejected(cluster: Cluster) -> None:
    _, docs = env_documents("local")
    template = copy.deepcopy(next(d for d in docs if d["kind"] == "WorkflowTemplate"))
    template["spec"]["templates"][0]["retryStrategy"] = {"limit": {"not": "an int-or-string"}}
    result = kube.apply(cluster.dynamic, [template], dry_run=True, namespace="kiosk-local")[0]
    assert result.result == "rejected", result
    assert "retryStrategy" in result.message


def test_dry_run_stores_nothing(cluster: Cluster, tmp_path: Path) -> None:
    _, docs = env_documents("local")
    probe = copy.deepcopy(next(d for d in docs if d["kind"] == "WorkflowTemplate"))
    probe["metadata"]["name"] = "dry-run-probe"
    assert kube.apply(cluster.dynamic, [probe], dry_run=True, namespace="kiosk-local")[0].result.startswith("created")
    resource = cluster.dynamic.resources.get(api_version="argoproj.io/v1alpha1", kind="WorkflowTemplate")
    names = [item.metadata.name for item in resource.get(namespace="kiosk-local").items]
    assert "dry-run-probe" not in names
