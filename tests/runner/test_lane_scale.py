"""Workflow size is O(parallelism): a 10,000-shard batch-inference run through `kiosk run` keeps its
status small and has parallelism + a constant nodes (tiny images, a nearly free model).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from tests.fixtures import onnx_models as zoo

REPO = REPO_ROOT
SHARDS = 10_000
PARALLELISM = 2
STATUS_LIMIT = 64 * 1024
#: Nodes besides the lanes: the main Steps and its StepGroup, the pipeline DAG, ingest and report (a
#: Retry node and its Pod each) and the infer TaskGroup. Each lane is a Retry node and its Pod, as Argo
#: records retried tasks.
FIXED_NODES = 8


@pytest.mark.slow
def test_ten_thousand_shards_keep_the_workflow_small(tmp_path):
    # Everything under the workdir: the runner gives each pod a private /tmp with only it mounted back.
    workdir = tmp_path / "kiosk"
    store = open_store(f"file://{workdir}/store")
    image = zoo.png(Image.new("RGB", (8, 8), (200, 30, 30)))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put_bytes(f"uploads/{i:05d}.png", image), range(SHARDS)))
    model = workdir / "colour.onnx"
    model.write_bytes(zoo.colour_classifier())
    parameters = {
        "input-uri": f"file://{workdir}/store/uploads",
        "output-uri": f"file://{workdir}/store/outputs",
        "model-uri": f"file://{model}",
        "shard-size": "1",
        "batch-size": "8",
        "parallelism": str(PARALLELISM),
    }
    command = [sys.executable, "-m", "pipelines.cli", "run", "batch-inference", "-o", "json"]
    command += ["--workdir", str(workdir)]
    for name, value in parameters.items():
        command += ["-p", f"{name}={value}"]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    workflow = json.loads(done.stdout)
    assert workflow["status"]["phase"] == "Succeeded"

    status = json.dumps(workflow["status"], separators=(",", ":"))
    print(f"{SHARDS} shards: status JSON {len(status)} bytes, {len(workflow['status']['nodes'])} nodes")
    assert len(status) < STATUS_LIMIT, f"status JSON is {len(status)} bytes for {SHARDS} shards"
    nodes = workflow["status"]["nodes"].values()
    lanes = [n for n in nodes if n["type"] == "Pod" and n["templateName"] == "infer"]
    assert len(lanes) == PARALLELISM
    assert len(workflow["status"]["nodes"]) == 2 * PARALLELISM + FIXED_NODES
    shards = sum(int(p["value"]) for n in lanes for p in n["outputs"]["parameters"] if p["name"] == "shards")
    assert shards == SHARDS
    outputs = {p["name"]: p["value"] for p in workflow["status"]["outputs"]["parameters"]}
    assert outputs["processed"] == str(SHARDS) and outputs["failed"] == "0"
    summary = json.loads(Path(outputs["summary-uri"].removeprefix("file://")).read_text())
    assert summary["processed"] == SHARDS and summary["failed"] == 0 and summary["shards"] == SHARDS
