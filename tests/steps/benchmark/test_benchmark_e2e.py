"""synth -> ingest -> infer -> report -> benchmark through the real steps as processes, with infer
pushing its own metrics to a Pushgateway that a real Prometheus scrapes.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.fixtures.prometheus import PromStack
from tests.steps.benchmark.bench_e2e import sweep


@pytest.mark.slow
def test_sweep_through_the_real_steps(prom_stack: PromStack, tmp_path):
    result = sweep(
        tmp_path,
        [(2, 6, 1), (4, 6, 2)],
        images=12,
        size=128,
        pushgateway=prom_stack.gateway,
        benchmark_flags=[
            f"--prometheus-url={prom_stack.url}",
            # Each lane pushes as its shard ends, the run's last moment; Prometheus here scrapes every 1 s.
            "--prometheus-lag-seconds=2",
            "--gpu-price-per-hour=2.48",
            "--cpu-price-per-hour=0.19",
            "--gpus-per-task=0",
        ],
    )
    assert result.returncode == 0, result.stderr
    report = tmp_path / "store/benchmark/report"
    runs = pd.read_csv(report / "runs.csv").set_index("config")
    assert sorted(runs.index) == ["bs2-ss6-p1", "bs4-ss6-p2"]
    for name in runs.index:
        summary = json.loads((tmp_path / f"store/benchmark/runs/{name}/report/summary.json").read_text())
        assert runs.loc[name, "processed"] == summary["processed"] == 12
        assert runs.loc[name, "images_per_second"] == pytest.approx(summary["images_per_second"])
        assert runs.loc[name, "latency_p99_ms"] == pytest.approx(summary["latency_ms"]["p99"])
        assert runs.loc[name, "providers"] == "CPUExecutionProvider"
    # steps.infer pushed its throughput gauge at the end of each shard; Prometheus scraped it.
    assert (runs["infer_images_per_second_max"] > 0).all(), (report / "report.md").read_text()
    outputs = tmp_path / "outputs/benchmark"
    assert (outputs / "best-config").read_text() == runs["images_per_second"].idxmax()
    assert (outputs / "report-uri").read_text() == f"file://{report}"
    markdown = (report / "report.md").read_text()
    assert "Best configuration: " in markdown and "| bs4-ss6-p2 | 12 | 0 |" in markdown
