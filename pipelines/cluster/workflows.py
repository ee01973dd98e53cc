"""Workflows on a real cluster: build and create one (`argo submit`), read it, follow it, its logs."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipelines.cluster.state import cluster_dir

GROUP, VERSION = "argoproj.io", "v1alpha1"
DONE = ("Succeeded", "Failed", "Error")


def from_template(template: str, namespace: str, parameters: dict[str, str]) -> dict[str, Any]:
    """What `argo submit --from workflowtemplate/NAME -p k=v` creates."""
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": template}}
    if parameters:
        spec["arguments"] = {"parameters": [{"name": k, "value": v} for k, v in parameters.items()]}
    meta = {
        "generateName": f"{template}-",
        "namespace": namespace,
        "labels": {"workflows.argoproj.io/workflow-template": template},
    }
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Workflow", "metadata": meta, "spec": spec}


def from_file(path: Path, namespace: str, parameters: dict[str, str]) -> dict[str, Any]:
    """What `argo submit FILE -p k=v` creates: the file's Workflow with the parameters overridden."""
    docs = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    if len(docs) != 1 or docs[0].get("kind") != "Workflow":
        raise ValueError(f"{path}: expected one Workflow manifest")
    workflow = docs[0]
    workflow.setdefault("metadata", {})["namespace"] = workflow["metadata"].get("namespace") or namespace
    arguments = workflow.setdefault("spec", {}).setdefault("arguments", {})
    params = arguments.setdefault("parameters", [])
    for name, value in parameters.items():
        for param in params:
            if param["name"] == name:
                param["value"] = value
                break
        else:
            raise ValueError(f"{path}: -p {name}: the workflow declares no such argument")
    return workflow


def create(api: k8s.ApiClient, workflow: dict[str, Any]) -> dict[str, Any]:
    namespace = workflow["metadata"]["namespace"]
    return k8s.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", workflow)


def get(api: k8s.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    return k8s.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, "workflows", name)


def wait(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    timeout_s: float | None = None,
    on_update: Callable[[dict[str, Any]], None] = lambda _: None,
    poll_s: float = 0.5,
) -> dict[str, Any]:
    """Poll until the workflow is finished (its phase in DONE); TimeoutError after `timeout_s`."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        workflow = get(api, namespace, name)
        on_update(workflow)
        if (workflow.get("status") or {}).get("phase") in DONE:
            return workflow
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"workflow {namespace}/{name} not finished after {timeout_s:.0f} s")
        time.sleep(poll_s)


def pod_name(workflow: dict[str, Any], node: dict[str, Any]) -> str:
    """The pod of a Pod node (v2 pod names: <workflow>-<template>-<hash of the node id>)."""
    name, node_id = workflow["metadata"]["name"], node["id"]
    template = node.get("templateName") or ""
    if not template or name == node_id:
        return node_id
    suffix = node_id.rsplit("-", 1)[-1]
    prefix = f"{name}-{template}"
    if len(prefix) > 63 - len(suffix) - 1:
        prefix = prefix[: 63 - len(suffix) - 1]
    return f"{prefix}-{suffix}"


def logs(
    api: k8s.ApiClient, workflow: dict[str, Any], container: str = "main", pods_root: Path | None = None
) -> list[tuple[str, str]]:
    """(pod, text) for each Pod node in start order: the pod log API, else the local agent's files
    (under `pods_root`, default the local cluster's `pods/`).
    """
    pods_root = pods_root or cluster_dir() / "pods"
    namespace = workflow["metadata"]["namespace"]
    nodes = sorted((workflow.get("status") or {}).get("nodes", {}).values(), key=lambda n: n.get("startedAt") or "")
    out = []
    for node in nodes:
        if node.get("type") != "Pod":
            continue
        pod = pod_name(workflow, node)
        out.append((node.get("displayName", pod), _pod_log(api, namespace, pod, container, pods_root)))
    return out


def follow(
    api: k8s.ApiClient,
    namespace: str,
    name: str,
    emit: Callable[[str, str], None],
    container: str = "main",
    pods_root: Path | None = None,
    poll_s: float = 0.5,
    timeout_s: float | None = None,
) -> dict[str, Any]:
    """`argo logs --follow`: emit (node, line) for each complete log line as pods write them, until the
    workflow is finished and a last read found nothing new; returns the finished workflow.

    Polls the pod log API (or the local agent's files) and prints what is past the lines already shown:
    a line still being written is held back until its newline, or until its pod has finished.
    """
    shown: dict[str, int] = {}
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    while True:
        workflow = get(api, namespace, name)
        finished = (workflow.get("status") or {}).get("phase") in DONE
        for node in _pod_nodes(workflow):
            pod = pod_name(workflow, node)
            lines = _pod_log(api, namespace, pod, container, pods_root or cluster_dir() / "pods").splitlines(True)
            if lines and not lines[-1].endswith("\n") and node.get("phase") not in DONE:
                lines.pop()  # still being written
            for line in lines[shown.get(pod, 0) :]:
                emit(node.get("displayName", pod), line.rstrip("\n"))
            shown[pod] = max(shown.get(pod, 0), len(lines))
        if finished:
            return workflow
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"workflow {namespace}/{name} not finished after {timeout_s:.0f} s")
        time.sleep(poll_s)


def _pod_nodes(workflow: dict[str, Any]) -> list[dict[str, Any]]:
    nodes = (workflow.get("status") or {}).get("nodes", {}).values()
    return [n for n in sorted(nodes, key=lambda n: n.get("startedAt") or "") if n.get("type") == "Pod"]


def _pod_log(api: k8s.ApiClient, namespace: str, pod: str, container: str, pods_root: Path) -> str:
    """The container's log less emissary's own lines, as `argo logs` and the UI show it."""
    text = ""
    with contextlib.suppress(ApiException):
        text = str(k8s.CoreV1Api(api).read_namespaced_pod_log(pod, namespace, container=container) or "")
    if not text:
        # The API answered nothing (no kubelet serves this pod's logs yet): the agent keeps them.
        found = sorted((pods_root / namespace).glob(f"{pod}-*/{container}.log"), key=lambda p: p.stat().st_mtime)
        text = found[-1].read_text(errors="replace") if found else ""
    return "".join(line for line in text.splitlines(True) if not _executor_line(line))


def _executor_line(line: str) -> bool:
    """Emissary's own log lines, interleaved with main's output in the container's log."""
    return line.startswith("time=") and " argo=true" in line
