"""Kubernetes API helpers shared by `kiosk cluster`, `kiosk apply` and `kiosk submit`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pipelines.cluster.state import ClusterState, cluster_dir

FIELD_MANAGER = "kiosk"


@dataclass
class Applied:
    kind: str
    name: str
    namespace: str
    result: str  # created | configured | unchanged | rejected
    message: str = ""


def api_client(kubeconfig: str | None = None, context: str | None = None) -> k8s.ApiClient:
    """The given kubeconfig/context; else $KUBECONFIG/~/.kube/config; else the local cluster when up."""
    if kubeconfig is None:
        local = ClusterState.load(cluster_dir())
        default = Path(k8s_config.KUBE_CONFIG_DEFAULT_LOCATION).expanduser()
        env = k8s_config.kube_config.os.environ.get("KUBECONFIG")
        if not env and not default.is_file() and local.kubeconfig.is_file():
            kubeconfig = str(local.kubeconfig)
    return k8s_config.new_client_from_config(kubeconfig, context=context)


def pods_root(kubeconfig: str | None = None) -> Path:
    """Where the node agent keeps pod logs for the cluster this kubeconfig names (local clusters only)."""
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path and (Path(path).parent / "pods").is_dir():
        return Path(path).parent / "pods"
    return cluster_dir() / "pods"


def apply(
    dynamic: DynamicClient, docs: list[dict[str, Any]], dry_run: bool = False, namespace: str | None = None
) -> list[Applied]:
    """Server-side apply of each document (force: this tool owns what it renders)."""
    results = []
    for doc in docs:
        meta = doc.get("metadata") or {}
        resource = dynamic.resources.get(api_version=doc["apiVersion"], kind=doc["kind"])
        ns = meta.get("namespace") or (namespace if resource.namespaced else None)
        if resource.namespaced and ns:
            meta["namespace"] = ns
        before = _get(resource, meta["name"], ns)
        kwargs: dict[str, Any] = {"field_manager": FIELD_MANAGER, "force_conflicts": True}
        if dry_run:
            kwargs["dry_run"] = "All"
        try:
            after = resource.server_side_apply(body=doc, name=meta["name"], namespace=ns, **kwargs)
        except ApiException as error:
            results.append(Applied(doc["kind"], meta["name"], ns or "", "rejected", _reason(error)))
            continue
        if before is None:
            result = "created"
        elif after.metadata.resourceVersion == before.metadata.resourceVersion:
            result = "unchanged"
        else:
            result = "configured"
        if dry_run:
            result += " (server dry run)"
        results.append(Applied(doc["kind"], meta["name"], ns or "", result))
    return results


def apply_all(dynamic: DynamicClient, docs: list[dict[str, Any]], namespace: str | None = None) -> None:
    """`apply`, where a refused object is an error: RuntimeError naming each one and why."""
    rejected = [r for r in apply(dynamic, docs, namespace=namespace) if r.result == "rejected"]
    if rejected:
        raise RuntimeError("; ".join(f"{r.kind}/{r.name}: {r.message}" for r in rejected))


def _get(resource: Any, name: str, namespace: str | None) -> Any:
    try:
        return resource.get(name=name, namespace=namespace)
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def _reason(error: ApiException) -> str:
    import json

    try:
        return str(json.loads(error.body).get("message", error.reason))
    except (TypeError, ValueError):
        return f"{error.status} {error.reason}"
