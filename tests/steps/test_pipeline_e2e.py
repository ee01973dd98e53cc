"""ingest -> infer (lane workers on the shard queue) -> report, as Argo would chain them, on both stores."""

from __future__ import annotations

import io
import json

import pandas as pd

from steps.common.storage import open_store
from steps.infer.main import run as infer
from steps.infer.params import InferParams
from steps.ingest.main import run as ingest
from steps.ingest.params import IngestParams
from steps.report.main import run as report
from steps.report.params import ReportParams
from testkit import onnx_models as zoo
from tests.fixtures.stepkit import read_outputs, run_step

SUMMARY_FIELDS = {
    "run_uri",
    "processed",
    "failed",
    "rejected",
    "images_per_second",
    "wall_seconds",
    "started_at",
    "finished_at",
    "latency_ms",
    "stage_seconds",
    "providers",
    "shards",
    "batch_size",
    "failures",
    "time_elapsed",
    "num_jobs",
}


def test_ingest_infer_report(store_case, tmp_path):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    model = tmp_path / "blobs.onnx"
    model.write_bytes(zoo.blob_segmenter())
    for i in range(5):
        store.put_bytes(f"uploads/img{i}.png", zoo.blob_image((64, 48), [(20 + i, 24, 8)]))
    good = zoo.blob_image((64, 64), [(30, 30, 9)])
    store.put_bytes("uploads/broken.png", good[:-40])  # header fine, pixels cut: reaches infer
    store.put_bytes("uploads/readme.txt", b"hello")
    common = [f"--s3-endpoint={store_case.endpoint}"]
    run_uri, out_uri = f"{store_case.uri}/runs/r1", f"{store_case.uri}/outputs"

    ingest_args = [
        *common,
        f"--input-uri={store_case.uri}/uploads",
        f"--output-uri={out_uri}",
        f"--run-uri={run_uri}",
        "--shard-size=3",
        f"--outputs-dir={tmp_path}/ingest",
    ]
    assert run_step("steps.ingest", IngestParams, ingest, ingest_args) == 0
    assert read_outputs(tmp_path / "ingest")["shards"] == "2"

    # Two lanes, one after the other: the first claims its stride and steals the rest.
    codes = [
        run_step(
            "steps.infer",
            InferParams,
            infer,
            [
                *common,
                f"--run-uri={run_uri}",
                f"--lane={n}",
                "--lanes=2",
                f"--model-uri=file://{model}",
                f"--output-uri={out_uri}",
                "--device=cpu",
                "--batch-size=2",
                "--ort-threads=1",
                "--max-failure-ratio=0.5",
                f"--outputs-dir={tmp_path}/infer{n}",
            ],
        )
        for n in range(2)
    ]
    assert codes == [0, 0]
    assert read_outputs(tmp_path / "infer0") == {"processed": "5", "failed": "1", "shards": "2"}
    assert read_outputs(tmp_path / "infer1") == {"processed": "0", "failed": "0", "shards": "0"}

    report_args = [*common, f"--run-uri={run_uri}", f"--output-uri={out_uri}", f"--outputs-dir={tmp_path}/report"]
    assert run_step("steps.report", ReportParams, report, report_args) == 0
    outputs = read_outputs(tmp_path / "report")
    assert outputs["processed"] == "5" and outputs["failed"] == "1" and float(outputs["throughput"]) > 0
    assert outputs["summary-uri"] == f"{run_uri}/report/summary.json"

    summary = json.loads(store.get_bytes("runs/r1/report/summary.json"))
    assert set(summary) >= SUMMARY_FIELDS
    assert (summary["processed"], summary["failed"], summary["rejected"], summary["shards"]) == (5, 1, 1, 2)
    assert summary["num_jobs"] == 6 and summary["time_elapsed"] == summary["wall_seconds"] > 0
    assert summary["started_at"] < summary["finished_at"] and summary["providers"] == ["CPUExecutionProvider"]
    assert summary["latency_ms"]["p50"] <= summary["latency_ms"]["p95"] <= summary["latency_ms"]["p99"]
    assert [f["key"] for f in summary["failures"]] == ["broken.png"]
    assert "corrupt png" in summary["failures"][0]["reason"]
    table = pd.read_csv(io.BytesIO(store.get_bytes("runs/r1/report/summary.csv")))
    assert list(table["shard"]) == ["shard-00000", "shard-00001"] and table["processed"].sum() == 5
    md = store.get_bytes("runs/r1/report/summary.md").decode()
    assert "**5 processed**" in md and "`broken.png`" in md and "`readme.txt`" in md

    # A rerun finds every output: only broken.png (no output, header fine) is pending again...
    assert run_step("steps.ingest", IngestParams, ingest, ingest_args) == 0
    again = read_outputs(tmp_path / "ingest")
    assert again["count"] == "1" and again["shards"] == "1"
    # ... and a full decode check rejects it at ingest: nothing left to do, no shards to fan out.
    assert run_step("steps.ingest", IngestParams, ingest, [*ingest_args, "--verify=decode"]) == 0
    again = read_outputs(tmp_path / "ingest")
    assert again["shards"] == "0" and again["count"] == "0" and again["rejected"] == "2"
    assert list(store.list("runs/r1/shards")) == [] and list(store.list("runs/r1/metrics")) == []
