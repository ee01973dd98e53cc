"""The benchmark step on s3:// (the S3 emulator, moto on 127.0.0.1): runs, report and baseline."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from steps.benchmark.main import run
from steps.benchmark.params import BenchmarkParams
from steps.common.storage import open_store
from tests.steps.benchmark.bench_fixtures import Sweep


def test_runs_report_and_baseline_on_s3(sweep: Sweep, s3_bucket, tmp_path):
    local = open_store(sweep.runs_uri)
    remote = open_store(f"{s3_bucket.uri}/bench/runs", s3_endpoint=s3_bucket.endpoint)
    for info in local.list():
        remote.put_bytes(info.key, local.get_bytes(info.key))

    def bench(report: str, baseline: str = "") -> int:
        return run(
            BenchmarkParams(
                runs_uri=f"{s3_bucket.uri}/bench/runs",
                report_uri=f"{s3_bucket.uri}/bench/{report}",
                outputs_dir=str(tmp_path / report),
                s3_endpoint=s3_bucket.endpoint,
                baseline=baseline,
                fail_on_regression=1.0 if baseline else 0.0,
            )
        )

    assert bench("first") == 0
    assert bench("second", baseline=f"{s3_bucket.uri}/bench/first/runs.parquet") == 0

    store = open_store(f"{s3_bucket.uri}/bench", s3_endpoint=s3_bucket.endpoint)
    keys = {info.key for info in store.list("second")}
    assert {
        "second/report.html",
        "second/report.md",
        "second/runs.csv",
        "second/runs.parquet",
        "second/summary.json",
        "second/plots/throughput.png",
    } <= keys
    runs = pd.read_parquet(io.BytesIO(store.get_bytes("second/runs.parquet"))).set_index("config")
    for name, summary in sweep.summaries.items():
        assert runs.loc[name, "images_per_second"] == pytest.approx(summary["images_per_second"])
    summary = json.loads(store.get_bytes("second/summary.json"))
    assert summary["regression"]["change_pct"] == 0.0
    assert (tmp_path / "second" / "report-uri").read_text() == f"{s3_bucket.uri}/bench/second"
