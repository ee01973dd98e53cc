"""What the Argo UI reads, through argo-server's REST API (the UI's own endpoints): the
WorkflowTemplates list with each parameter's description and enum, a submit from a template as the
UI's Submit button does it, and that run's logs, nodes and outputs. The UI bundle itself is not
built here (docs/cluster.md says why); argo-server serves an empty page in its place.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import urllib3
import yaml

from pipelines.cluster import workflows
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import NAMESPACE, ArgoServer, Cluster

LOCAL = REPO_ROOT / "argocd" / "workflows" / "local"


def api(server: ArgoServer, method: str, path: str, **kwargs: Any) -> requests.Response:
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # argo-server's self-signed cert
    headers = {"Authorization": f"Bearer {server.token}"}
    return requests.request(method, f"{server.url}{path}", headers=headers, verify=False, timeout=600, **kwargs)


def parameters(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each parameter, by name: what the UI's submit form shows: description, enum (its drop-down) and default."""
    found = {}
    for param in (template["spec"].get("arguments") or {}).get("parameters") or []:
        found[param["name"]] = {k: param.get(k) for k in ("description", "enum", "value")}
    return found


def rendered() -> dict[str, dict[str, Any]]:
    docs = [yaml.safe_load(p.read_text()) for p in sorted(LOCAL.glob("workflowtemplate-*.yaml"))]
    return {doc["metadata"]["name"]: doc for doc in docs}


def test_template_list_shows_descriptions_and_enums(cluster: Cluster, argo_server: ArgoServer) -> None:
    answer = api(argo_server, "GET", f"/api/v1/workflow-templates/{NAMESPACE}")
    assert answer.status_code == 200, answer.text
    served = {t["metadata"]["name"]: t for t in answer.json()["items"]}
    expected = rendered()
    assert set(expected) <= set(served)
    for name, doc in expected.items():
        assert parameters(served[name]) == parameters(doc), name
    shown = [p for t in expected for p in parameters(served[t]).values()]
    assert all(p["description"] for p in shown)
    assert any(p["enum"] for p in shown)  # e.g. synthetic-data's image-format


def test_token_is_scoped_to_the_local_namespace(cluster: Cluster, argo_server: ArgoServer) -> None:
    assert api(argo_server, "GET", "/api/v1/workflow-templates/argo").status_code == 403
    assert api(argo_server, "GET", f"/api/v1/workflow-templates/{NAMESPACE}").status_code == 200


def logs(server: ArgoServer, name: str) -> list[dict[str, str]]:
    """The UI's log view: the workflow's log stream, followed to its end (finished pods are GC'd)."""
    query = {"logOptions.container": "main", "logOptions.follow": "true"}
    answer = api(server, "GET", f"/api/v1/workflows/{NAMESPACE}/{name}/log", params=query, stream=True)
    assert answer.status_code == 200, answer.text
    return [json.loads(line)["result"] for line in answer.iter_lines() if line]


def test_submit_then_logs_nodes_and_outputs(cluster: Cluster, argo_server: ArgoServer, tmp_path: Path) -> None:
    uri = "file://$KIOSK_WORKDIR/store/ui-api"
    body = {
        "resourceKind": "WorkflowTemplate",
        "resourceName": "synthetic-data",
        "submitOptions": {"parameters": [f"output-uri={uri}", "count=2", "width=64", "height=64"]},
    }
    answer = api(argo_server, "POST", f"/api/v1/workflows/{NAMESPACE}/submit", json=body)
    assert answer.status_code == 200, answer.text
    name = answer.json()["metadata"]["name"]
    lines = logs(argo_server, name)
    workflows.wait(cluster.api, NAMESPACE, name, 300)
    workflow = api(argo_server, "GET", f"/api/v1/workflows/{NAMESPACE}/{name}").json()
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"]
    pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
    assert [n["phase"] for n in pods] == ["Succeeded"]
    outputs = {p["name"]: p["value"] for p in pods[0]["outputs"]["parameters"]}
    assert outputs["count"] == "2" and outputs["uri"].endswith("/store/ui-api"), outputs
    assert any(line["content"].startswith("synth: wrote 2 images") for line in lines), lines
    # one pod, named by Argo's v2 pod names: <workflow>-<template>-<node id's hash>
    assert {line["podName"] for line in lines} == {f"{name}-synth-{pods[0]['id'].rsplit('-', 1)[1]}"}
