"""Every rendered WorkflowTemplate of the `local` env reaches Succeeded on Argo's real controller,
its steps run by argoexec through the node agent, with its outputs checked against the file store.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import Cluster

LOCAL = REPO_ROOT / "argocd" / "workflows" / "local"
RENDERED = sorted(
    doc["metadata"]["name"]
    for path in LOCAL.glob("workflowtemplate-*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") == "WorkflowTemplate"
)
IMAGES = 12


def outputs(workflow: dict[str, Any]) -> dict[str, str]:
    """Every output parameter of the run; workflow-level (globalName) ones win."""
    found = {}
    nodes = workflow["status"]["nodes"]
    root = nodes[workflow["metadata"]["name"]]  # the run's own outputs win over a shard's
    for node in [*nodes.values(), root]:
        for param in (node.get("outputs") or {}).get("parameters") or []:
            found[param["name"]] = param.get("value", "")
    for param in (workflow["status"].get("outputs") or {}).get("parameters") or []:
        found[param["name"]] = param.get("value", "")
    return found


def published(workflow: dict[str, Any]) -> dict[str, str]:
    """The workflow's own outputs (`status.outputs`: the globalName ones), what `argo get` shows."""
    return {p["name"]: p.get("value", "") for p in (workflow["status"].get("outputs") or {}).get("parameters") or []}


def local_path(cluster: Cluster, uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://").replace("$KIOSK_WORKDIR", str(cluster.workdir)))


def succeeded(cluster: Cluster, name: str, parameters: dict[str, str], timeout_s: float = 300) -> dict[str, Any]:
    workflow = cluster.submit_template(name, parameters, timeout_s)
    failed = {
        n["displayName"]: n.get("message") for n in workflow["status"]["nodes"].values() if n["phase"] != "Succeeded"
    }
    assert workflow["status"]["phase"] == "Succeeded", (workflow["status"].get("message"), failed)
    return workflow


def synth(cluster: Cluster, prefix: str) -> Path:
    uri = f"file://$KIOSK_WORKDIR/store/uploads/{prefix}"
    succeeded(cluster, "synthetic-data", {"output-uri": uri, "count": str(IMAGES), "width": "128", "height": "128"})
    return local_path(cluster, uri)


def case_synthetic_data(cluster: Cluster) -> None:
    images = synth(cluster, "synth-case")
    assert len(list(images.rglob("*.png"))) == IMAGES


def case_batch_inference(cluster: Cluster) -> None:
    images = synth(cluster, "inference-case")
    out_uri = "file://$KIOSK_WORKDIR/store/outputs/inference-case"
    params = {"input-uri": f"file://{images}", "output-uri": out_uri}
    found = published(succeeded(cluster, "batch-inference", params, 400))
    assert (found["processed"], found["failed"]) == (str(IMAGES), "0"), found
    assert local_path(cluster, found["summary-uri"]).is_file()
    written = {
        p.relative_to(local_path(cluster, out_uri)).parts[0]
        for p in local_path(cluster, out_uri).rglob("*")
        if p.is_file()
    }
    inputs = {p.relative_to(images).parts[0] for p in images.rglob("*.png")}
    assert {Path(w).stem.split(".")[0] for w in written} >= {Path(i).stem for i in inputs}


def case_benchmark(cluster: Cluster) -> None:
    found = published(succeeded(cluster, "benchmark", {}, 600))
    assert sorted(found) == ["best-config", "cost-per-1k-images", "images-per-second", "report-uri"], found
    assert local_path(cluster, found["report-uri"]).exists(), found
    assert float(found["images-per-second"]) > 0


def case_retention_cleanup(cluster: Cluster) -> None:
    uploads = cluster.workdir / "store" / "uploads" / "retention-case"
    old, new = [uploads / f"old-{i}.png" for i in range(3)], [uploads / f"new-{i}.png" for i in range(2)]
    ten_days_ago = time.time() - 10 * 86400
    for path in old + new:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 10)
    for path in old:
        os.utime(path, (ten_days_ago, ten_days_ago))
    dry = outputs(succeeded(cluster, "retention-cleanup", {"older-than": "7d"}))
    report = json.loads(local_path(cluster, dry["report"]).read_text())
    assert (dry["deleted"], report["dry_run"], report["would_delete"]) == ("0", True, len(old))  # the default
    assert all(p.exists() for p in old + new)
    real = outputs(succeeded(cluster, "retention-cleanup", {"older-than": "7d", "dry-run": "false"}))
    assert int(real["deleted"]) == len(old)
    assert [p.exists() for p in old + new] == [False] * len(old) + [True] * len(new)


def case_publish_model(cluster: Cluster) -> None:
    uri = "file://$KIOSK_WORKDIR/store/model-repository-case"
    succeeded(cluster, "publish-model", {"repository-uri": uri, "model-name": "detector", "model-version": "3"})
    version = local_path(cluster, uri) / "detector"
    assert (version / "3" / "model.onnx").stat().st_size > 0
    assert "max_batch_size" in (version / "config.pbtxt").read_text()


CASES = {
    name.removeprefix("case_").replace("_", "-"): fn for name, fn in dict(globals()).items() if name.startswith("case_")
}


def test_every_rendered_template_has_a_case() -> None:
    assert sorted(CASES) == RENDERED


@pytest.mark.parametrize("name", RENDERED)
def test_rendered_template_succeeds_on_the_real_controller(cluster: Cluster, name: str) -> None:
    CASES[name](cluster)
