"""What the cluster bills for each run: its infer lane pods' lifetimes, read from the Workflow status
(`startedAt`/`finishedAt` of each Pod node, every retry included), and its S3 requests.

The Workflow comes from the Kubernetes API (`<namespace>/<name>`, in a cluster) or from a JSON file
or object (`argo get -o json`, `kiosk run -o json`). A run's lane pods are the `infer` Pod nodes
whose boundary is the `pipeline` DAG node that got the run's `run-uri`.
"""

from __future__ import annotations

import base64
import gzip
import json
import os
from dataclasses import dataclass
from datetime import datetime

from steps.common.errors import StepError
from steps.common.storage import read_uri

LANE_TEMPLATE = "infer"
PIPELINE_TEMPLATE = "pipeline"


@dataclass(frozen=True)
class Billed:
    lane_seconds: float  # sum of the lane pods' lifetimes: what nodes with a GPU each were held for
    span_seconds: float  # first lane start to last lane finish: the run's billed inference wall time
    pods: int


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def nodes_of(workflow: dict) -> dict[str, dict]:
    status = workflow.get("status") or {}
    if status.get("nodes"):
        return status["nodes"]
    packed = status.get("compressedNodes")  # Argo gzips nodes of big workflows (workflow/packer)
    if packed:
        return json.loads(gzip.decompress(base64.b64decode(packed)))
    return {}


def _run_name(uri: str) -> str:
    return uri.rstrip("/").rsplit("/", 1)[-1]


def lane_pods(workflow: dict) -> dict[str, Billed]:
    """Billed lane time per run name (the last path part of the pipeline's `run-uri`)."""
    nodes = nodes_of(workflow)
    runs: dict[str, str] = {}  # pipeline DAG node id -> run name
    for node in nodes.values():
        ref = (node.get("templateRef") or {}).get("template")
        if node.get("type") == "DAG" and PIPELINE_TEMPLATE in (node.get("templateName"), ref):
            params = {p["name"]: p.get("value", "") for p in (node.get("inputs") or {}).get("parameters", [])}
            if params.get("run-uri"):
                runs[node["id"]] = _run_name(params["run-uri"])
    out: dict[str, Billed] = {}
    for boundary, name in runs.items():
        spans = []
        for node in nodes.values():
            if node.get("type") != "Pod" or node.get("templateName") != LANE_TEMPLATE:
                continue
            if node.get("boundaryID") != boundary:
                continue
            start, end = _time(node.get("startedAt")), _time(node.get("finishedAt"))
            if start and end:
                spans.append((start, end))
        if spans:
            out[name] = Billed(
                lane_seconds=sum((e - s).total_seconds() for s, e in spans),
                span_seconds=(max(e for _, e in spans) - min(s for s, _ in spans)).total_seconds(),
                pods=len(spans),
            )
    return out


def load_workflow(source: str, *, s3_endpoint: str = "", max_attempts: int = 5) -> tuple[dict | None, str]:
    """(Workflow, note). `source`: '' (none), '<namespace>/<name>' (Kubernetes API) or a URI of JSON."""
    if not source:
        return None, "no --workflow given"
    if "://" in source:
        data = read_uri(source, s3_endpoint=s3_endpoint, max_attempts=max_attempts)
        if data is None:
            raise StepError(f"--workflow {source!r}: not found")
        try:
            return json.loads(data), f"Workflow status from {source}"
        except ValueError as error:
            raise StepError(f"--workflow {source!r}: not JSON: {error}") from None
    namespace, _, name = source.partition("/")
    if not namespace or not name:
        raise StepError(f"--workflow {source!r}: expected <namespace>/<name> or a URI of the Workflow's JSON")
    if not os.environ.get("KUBERNETES_SERVICE_HOST"):
        return None, f"Workflow {source} not readable: not running in a cluster"
    from kubernetes import client, config  # only in a cluster: the import costs ~0.5 s

    config.load_incluster_config()
    try:
        workflow = client.CustomObjectsApi().get_namespaced_custom_object(
            "argoproj.io", "v1alpha1", namespace, "workflows", name
        )
    except client.ApiException as error:
        return None, f"Workflow {source} not readable: {error.status} {error.reason}"
    return workflow, f"Workflow status of {source} from the Kubernetes API"
