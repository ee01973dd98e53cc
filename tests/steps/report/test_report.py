"""The report step on its own: a run's shard metrics and results, written by hand, in; summary out."""

from __future__ import annotations

import json

import pytest

from steps.common import runlayout
from steps.common.storage import open_store
from steps.report import main as report_main
from steps.report.main import markdown, summarize
from steps.report.main import run as report
from steps.report.params import ReportParams
from tests.fixtures.stepkit import read_outputs, run_step


def _metrics(shard: str, processed: int, failed: int, started: str, finished: str) -> dict:
    return {
        "shard": shard,
        "items": processed + failed,
        "processed": processed,
        "processed_now": processed,
        "resumed": 0,
        "failed": failed,
        "wall_seconds": 1.0,
        "images_per_second": float(processed),
        "batch_size": 4,
        "started_at": started,
        "finished_at": finished,
        "stage_seconds": {"download": 0.5, "decode": 0.25, "infer": 1.0, "upload": 0.25},
        "latency_ms": {"p50": 1.0, "p95": 2.0},
        "providers": ["CPUExecutionProvider"],
    }


def _seed(tmp_path, failures: int = 1):
    store = open_store(f"file://{tmp_path}/run")
    for index in range(3):  # three shards fanned out, only two wrote metrics
        store.put_bytes(runlayout.shard_key(index), b"")
    store.put_bytes(
        f"{runlayout.METRICS_DIR}/shard-00000.json",
        json.dumps(_metrics("shard-00000", 3, 0, "2026-01-01T00:00:00+00:00", "2026-01-01T00:00:02+00:00")).encode(),
    )
    store.put_bytes(
        f"{runlayout.METRICS_DIR}/shard-00001.json",
        json.dumps(
            _metrics("shard-00001", 1, failures, "2026-01-01T00:00:01+00:00", "2026-01-01T00:00:04+00:00")
        ).encode(),
    )
    rows = [{"key": f"ok{i}.png", "status": "ok", "latency_ms": float(i + 1)} for i in range(4)]
    rows += [{"key": f"bad{i}.png", "status": "failed", "reason": f"corrupt | {i}"} for i in range(failures)]
    store.put_bytes(f"{runlayout.RESULTS_DIR}/shard-00000.jsonl", "".join(json.dumps(r) + "\n" for r in rows).encode())
    store.put_bytes(runlayout.REJECTED, json.dumps({"key": "notes.txt", "reason": "not an image"}).encode() + b"\n")
    return store


def test_summary_counts_wall_time_and_missing_shards(tmp_path):
    store = _seed(tmp_path)
    summary, table, failures = summarize(store, "file:///run", "file:///out")
    assert (summary["processed"], summary["failed"], summary["rejected"]) == (4, 1, 1)
    # wall time spans the earliest start to the latest finish over all shards, not a sum
    assert summary["wall_seconds"] == 4.0 and summary["images_per_second"] == 1.0
    assert summary["shards"] == 2 and summary["shards_expected"] == 3
    assert summary["missing_shards"] == ["shard-00002"]
    assert summary["latency_ms"] == {"p50": 2.5, "p95": 3.85, "p99": 3.97}
    assert summary["stage_seconds"] == {"download": 1.0, "decode": 0.5, "infer": 2.0, "upload": 0.5}
    assert list(table["shard"]) == ["shard-00000", "shard-00001"]
    assert sorted(zip(failures["key"], failures["stage"], strict=True)) == [
        ("bad0.png", "infer"),
        ("notes.txt", "ingest"),
    ]


def test_failures_listed_in_summary_json_are_capped(tmp_path, monkeypatch):
    monkeypatch.setattr(report_main, "MAX_LISTED", 2)
    summary, _, failures = summarize(_seed(tmp_path, failures=3), "r", "o")
    assert len(failures) == 4  # failures.csv keeps them all, the ingest reject included
    assert [f["key"] for f in summary["failures"]] == ["bad0.png", "bad1.png"] and summary["failures_truncated"]


def test_markdown_names_missing_shards_and_escapes_table_cells(tmp_path):
    summary, table, failures = summarize(_seed(tmp_path), "file:///run", "file:///out")
    md = markdown(summary, table, failures)
    assert "**shards without metrics** (crashed or still running): shard-00002" in md
    assert "| `bad0.png` | infer | corrupt / 0 |" in md


@pytest.mark.parametrize("summary_uri", ["", "elsewhere"])
def test_report_of_an_empty_run(tmp_path, summary_uri):
    run_uri = f"file://{tmp_path}/run"
    # What ingest writes when it finds nothing new: an index of no shards.
    open_store(run_uri).put_bytes(runlayout.SHARD_INDEX, json.dumps({"count": 0, "shards": []}).encode())
    target = f"file://{tmp_path}/{summary_uri}" if summary_uri else ""
    args = [
        f"--run-uri={run_uri}",
        f"--output-uri=file://{tmp_path}/out",
        f"--outputs-dir={tmp_path}/o",
        f"--summary-uri={target}",
    ]
    assert run_step("steps.report", ReportParams, report, args) == 0
    outputs = read_outputs(tmp_path / "o")
    assert outputs["processed"] == "0" and outputs["throughput"] == "0.0"
    expected = f"{target}/summary.json" if target else f"{run_uri}/report/summary.json"
    assert outputs["summary-uri"] == expected
    with open(expected.removeprefix("file://")) as handle:
        summary = json.load(handle)
    assert summary["shards"] == 0 and summary["failures"] == [] and summary["missing_shards"] == []


def test_a_run_ingest_never_wrote_is_an_error(tmp_path, capsys):
    args = [
        f"--run-uri=file://{tmp_path}/no-such-run",
        f"--output-uri=file://{tmp_path}/out",
        f"--outputs-dir={tmp_path}/o",
    ]
    assert run_step("steps.report", ReportParams, report, args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--run-uri: no run at" in err and "no-such-run" in err, err
    assert not (tmp_path / "no-such-run").exists() and not (tmp_path / "o").exists()
