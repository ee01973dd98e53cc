"""Billing from the Workflow status: lane pod lifetimes per run, compressed nodes, costs with S3 requests."""

from __future__ import annotations

import base64
import gzip
import json
import math

import pandas as pd
import pytest

from steps.benchmark.billing import lane_pods, load_workflow
from steps.benchmark.costs import Prices, add_costs
from steps.common.errors import StepError


def _node(id_: str, type_: str, template: str, start: str, end: str, boundary: str = "", **extra) -> dict:
    node = {"id": id_, "type": type_, "templateName": template, "startedAt": start, "finishedAt": end, **extra}
    if boundary:
        node["boundaryID"] = boundary
    return node


def _workflow() -> dict:
    t = "2026-12-01T10:00:{:02d}Z".format
    run = {"parameters": [{"name": "run-uri", "value": "file:///s/benchmarks/b1/runs/bs8-ss100-p2"}]}
    other = {"parameters": [{"name": "run-uri", "value": "s3://bkt/benchmarks/b1/runs/bs8-ss100-p1"}]}
    nodes = [
        _node("p2", "DAG", "pipeline", t(0), t(40), inputs=run),
        _node("p2-ingest", "Pod", "ingest", t(0), t(5), "p2"),
        _node("p2-lane0", "Pod", "infer", t(5), t(35), "p2"),
        _node("p2-lane1a", "Pod", "infer", t(6), t(10), "p2"),  # failed attempt: billed too
        _node("p2-lane1b", "Pod", "infer", t(12), t(36), "p2"),
        _node("p2-report", "Pod", "report", t(36), t(40), "p2"),
        # a templateRef'd pipeline (the benchmark's sweep) names the template in templateRef
        _node(
            "p1", "DAG", "", t(0), t(59), inputs=other, templateRef={"name": "batch-inference", "template": "pipeline"}
        ),
        _node("p1-lane0", "Pod", "infer", t(1), t(50), "p1"),
    ]
    return {"status": {"nodes": {n["id"]: n for n in nodes}}}


def test_lane_pods_sum_every_attempt_per_run():
    billed = lane_pods(_workflow())
    assert set(billed) == {"bs8-ss100-p2", "bs8-ss100-p1"}
    two = billed["bs8-ss100-p2"]
    assert (two.lane_seconds, two.span_seconds, two.pods) == (30 + 4 + 24, 31, 3)
    assert billed["bs8-ss100-p1"].lane_seconds == 49


def test_compressed_nodes_from_a_file(tmp_path):
    workflow = _workflow()
    nodes = workflow["status"].pop("nodes")
    workflow["status"]["compressedNodes"] = base64.b64encode(gzip.compress(json.dumps(nodes).encode())).decode()
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(workflow))
    loaded, note = load_workflow(f"file://{path}")
    assert "wf.json" in note and lane_pods(loaded)["bs8-ss100-p2"].pods == 3


def test_workflow_source_errors(tmp_path, monkeypatch):
    with pytest.raises(StepError, match="not found"):
        load_workflow(f"file://{tmp_path}/missing.json")
    with pytest.raises(StepError, match="expected <namespace>/<name>"):
        load_workflow("just-a-name")
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    assert load_workflow("kiosk/bench-1") == (None, "Workflow kiosk/bench-1 not readable: not running in a cluster")


def test_costs_use_billed_lane_time_and_requests():
    frame = pd.DataFrame(
        [
            {"run_name": "bs8-ss100-p2", "parallelism": 2, "wall_seconds": 20.0, "processed": 640},
            {"run_name": "unknown", "parallelism": 2, "wall_seconds": 20.0, "processed": 640},
        ]
    ).assign(images_per_second=32.0, requests_get=1000, requests_put=3000, requests_list=1000)
    prices = Prices(gpu_per_hour=3.6, cpu_per_hour=0.36, gpus_per_task=1, s3_get_per_1k=0.4, s3_put_per_1k=5.0)
    out = add_costs(frame, prices, lane_pods(_workflow()))
    billed, estimate = out.iloc[0], out.iloc[1]
    assert billed["billing_source"] == "workflow status" and estimate["billing_source"] == "in-step estimate"
    assert billed["billed_lane_seconds"] == 58 and estimate["billed_lane_seconds"] == 40
    assert billed["images_per_second"] == pytest.approx(640 / 31) and billed["images_per_second_in_step"] == 32
    assert estimate["images_per_second"] == 32
    requests = (1000 * 0.4 + 4000 * 5.0) / 1000
    assert billed["request_cost"] == pytest.approx(requests)
    assert billed["total_cost"] == pytest.approx(58 / 3600 * (3.6 + 0.36) + requests)
    assert billed["cost_per_1k_images"] == pytest.approx(billed["total_cost"] / 640 * 1000)
    assert not math.isnan(estimate["cost_per_1k_images"])
