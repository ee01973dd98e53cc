"""The benchmark step against a real Prometheus that scrapes a Pushgateway fed by a real run.

No GPU on the CI machine, so the "accelerator" metrics are the inference process' own CPU % and
RSS, sampled with psutil while PP-OCRv4 runs and pushed under configurable names; the throughput
gauge uses the name steps.infer pushes. The report's numbers must be exactly what
prometheus-api-client returns for the same queries and windows.
"""

from __future__ import annotations

import json

import pandas as pd
import pytest
from prometheus_api_client import PrometheusConnect
from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from steps.benchmark.main import run
from steps.benchmark.params import BenchmarkParams
from steps.benchmark.prom import collect
from steps.common.cli import main
from tests.fixtures.prometheus import PromStack
from tests.steps.benchmark.bench_fixtures import Sweep, make_sweep
from tests.steps.benchmark.bench_workload import Pusher

QUERIES = {
    "gpu_util": "avg(kiosk_test_accel_util_percent)",
    "gpu_mem_mib": "sum(kiosk_test_accel_mem_mib)",
    "cpu_cores": "sum(kiosk_test_accel_util_percent) / 100",
    "infer_images_per_second": "sum(kiosk_infer_images_per_second)",
}
RUN_QUERY = 'max(kiosk_test_batch_size{run="$run"})'  # per run: $run is the run's directory name


@pytest.fixture(scope="module")
def pushed_sweep(prom_stack: PromStack, tmp_path_factory) -> tuple[Sweep, Pusher]:
    pusher = Pusher(prom_stack.gateway, scraped=prom_stack.wait_for)
    pusher.push()  # Prometheus must hold a sample before the first run starts, like a long-running exporter
    prom_stack.wait_for("kiosk_test_accel_mem_mib", pusher.pushed[-1]["mem"])
    # Bigger than the plain sweep: each run should span a few 1 s scrapes.
    sweep = make_sweep(
        tmp_path_factory.mktemp("pushed"), points=[(2, 16, 1), (8, 16, 2)], pusher=pusher, count=40, size=192
    )
    return sweep, pusher  # each run waited until Prometheus held its final samples


def test_report_has_what_prometheus_returns(prom_stack: PromStack, pushed_sweep, tmp_path):
    sweep, pusher = pushed_sweep
    out = tmp_path / "report"
    code = run(
        BenchmarkParams(
            runs_uri=sweep.runs_uri,
            report_uri=f"file://{out}",
            outputs_dir=str(tmp_path / "outputs"),
            prometheus_url=prom_stack.url,
            gpu_metric="kiosk_test_accel_util_percent",
            gpu_memory_metric="kiosk_test_accel_mem_mib",
            cpu_query=QUERIES["cpu_cores"],
            gpu_price_per_hour=1.0,
            cpu_price_per_hour=0.1,
            step_queries=json.dumps(
                {"infer_images_per_second": QUERIES["infer_images_per_second"], "run_batch_size": RUN_QUERY}
            ),
        )
    )
    assert code == 0
    runs = pd.read_parquet(out / "runs.parquet").set_index("config")
    client = PrometheusConnect(url=prom_stack.url)
    pushed_util = [s["util"] for s in pusher.pushed]
    for name, summary in sweep.summaries.items():
        # The documented window: the run's start and end widened to whole seconds.
        start = pd.Timestamp(summary["started_at"]).floor("s").to_pydatetime()
        end = pd.Timestamp(summary["finished_at"]).ceil("s").to_pydatetime()
        for key, query in QUERIES.items():
            result = client.custom_query_range(query, start_time=start, end_time=end, step="1")
            values = [float(v) for series in result for _, v in series["values"]]
            assert values, (name, key)
            assert runs.loc[name, f"{key}_mean"] == pytest.approx(sum(values) / len(values)), (name, key)
            assert runs.loc[name, f"{key}_max"] == pytest.approx(max(values)), (name, key)
        # Whatever Prometheus held in the window was pushed by the real run, not made up on the way.
        assert min(pushed_util) <= runs.loc[name, "gpu_util_mean"] <= max(pushed_util)
        assert runs.loc[name, "infer_images_per_second_max"] > 0
        assert runs.loc[name, "run_batch_size_max"] == runs.loc[name, "batch_size"]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["prometheus"]["available"] is True
    assert summary["prometheus"]["queries"] == {**QUERIES, "run_batch_size": RUN_QUERY}
    assert (out / "plots" / "gpu_util.png").stat().st_size > 0
    markdown = (out / "report.md").read_text()
    assert "no Prometheus data" not in markdown
    for name in sweep.summaries:
        line = next(line for line in markdown.splitlines() if line.startswith(f"| {name} |"))
        assert f"| {runs.loc[name, 'gpu_util_mean']:.1f} |" in line
    for query in QUERIES.values():
        assert f"`{query}`" in markdown


def test_malformed_query_fails_naming_it(prom_stack: PromStack, pushed_sweep, tmp_path, capsys):
    sweep, _ = pushed_sweep
    bad = "sum(rate(container_cpu_usage_seconds_total[1m])"
    with pytest.raises(SystemExit) as exit_info:
        main(
            BenchmarkParams,
            run,
            [
                f"--runs-uri={sweep.runs_uri}",
                f"--report-uri=file://{tmp_path}/report",
                f"--outputs-dir={tmp_path}/outputs",
                f"--prometheus-url={prom_stack.url}",
                f"--cpu-query={bad}",
            ],
        )
    err = capsys.readouterr().err
    print(err)  # shown with -rA: what a user sees
    assert exit_info.value.code == 2
    assert err.count("\n") == 1 and "cpu_cores" in err and repr(bad) in err
    assert not (tmp_path / "report").exists() and not (tmp_path / "outputs").exists()


def test_lag_waits_for_a_push_made_as_the_run_ended(prom_stack: PromStack):
    """A value pushed at the run's last moment is scraped after it ends: with a lag the step waits for
    the scrape before it queries, instead of querying a window whose end is still in the future.
    """
    now = pd.Timestamp.now(tz="UTC")
    frame = pd.DataFrame(
        [{"config": "late", "run_name": "late", "started_at": now - pd.Timedelta(seconds=1), "finished_at": now}]
    )
    registry = CollectorRegistry()
    Gauge("kiosk_test_late_push", "Pushed as the run ended", registry=registry).set(7)
    push_to_gateway(prom_stack.gateway, job="kiosk-test-late", registry=registry, timeout=10)
    data = collect(prom_stack.url, frame, {"late": "max(kiosk_test_late_push)"}, lag=2.5)
    assert pd.Timestamp.now(tz="UTC") >= now + pd.Timedelta(seconds=2.5)
    assert data.per_run["late"]["late_max"] == 7
