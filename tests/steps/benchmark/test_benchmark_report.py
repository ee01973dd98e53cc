"""The benchmark step over a real measured sweep: tables, costs, outputs, regression gate, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from steps.benchmark.main import run
from steps.benchmark.params import BenchmarkParams
from steps.benchmark.prom import build_queries
from steps.benchmark.runs import load_runs
from steps.common.cli import main, parse_args
from steps.common.storage import open_store
from tests.fixtures.prometheus import free_port
from tests.steps.benchmark.bench_fixtures import Sweep

PRICES = {"gpu": 2.48, "cpu": 0.19, "gpus_per_task": 1}


def bench(capsys, runs_uri: str, out: Path, *flags: str) -> tuple[int, str, str]:
    """Run the step through its CLI entry in-process (same parsing and error path as python -m)."""
    argv = [
        f"--runs-uri={runs_uri}",
        f"--report-uri=file://{out}/report",
        f"--outputs-dir={out}/outputs",
        f"--gpu-price-per-hour={PRICES['gpu']}",
        f"--cpu-price-per-hour={PRICES['cpu']}",
        f"--gpus-per-task={PRICES['gpus_per_task']}",
        *flags,
    ]
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(BenchmarkParams, run, argv)
    captured = capsys.readouterr()
    return exit_info.value.code, captured.out, captured.err


@pytest.fixture(scope="module")
def first_report(sweep: Sweep, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("report")
    run(
        BenchmarkParams(
            runs_uri=sweep.runs_uri,
            report_uri=f"file://{out}/report",
            outputs_dir=f"{out}/outputs",
            gpu_price_per_hour=PRICES["gpu"],
            cpu_price_per_hour=PRICES["cpu"],
            gpus_per_task=PRICES["gpus_per_task"],
        )
    )
    return out


def test_report_matches_the_runs(sweep: Sweep, first_report: Path):
    report = first_report / "report"
    assert sorted(p.name for p in report.iterdir()) == sorted(
        ["plots", "report.html", "report.md", "runs.csv", "runs.parquet", "summary.json"]
    )
    assert sorted(p.name for p in (report / "plots").iterdir()) == ["latency_cdf.png", "stages.png", "throughput.png"]
    runs = pd.read_csv(report / "runs.csv").set_index("config")
    parquet = pd.read_parquet(report / "runs.parquet").set_index("config")
    assert sorted(runs.index) == sorted(sweep.summaries) == sorted(parquet.index)
    for name, summary in sweep.summaries.items():
        row = runs.loc[name]
        assert row["images_per_second"] == pytest.approx(summary["images_per_second"])
        assert row["latency_p95_ms"] == pytest.approx(summary["latency_ms"]["p95"])
        assert row["stage_infer_seconds"] == pytest.approx(summary["stage_seconds"]["infer"])
        batch, shard, parallelism = (int(part.lstrip("bsp")) for part in name.split("-"))
        assert (row["batch_size"], row["shard_size"], row["parallelism"]) == (batch, shard, parallelism)
        hours = summary["wall_seconds"] / 3600 * parallelism
        cost = hours * (PRICES["gpus_per_task"] * PRICES["gpu"] + PRICES["cpu"])
        assert row["cost_per_1k_images"] == pytest.approx(cost / summary["processed"] * 1000)
        assert parquet.loc[name, "images_per_second"] == pytest.approx(row["images_per_second"])

    best = max(sweep.summaries, key=lambda n: sweep.summaries[n]["images_per_second"])
    outputs = first_report / "outputs"
    assert (outputs / "best-config").read_text() == best
    assert float((outputs / "images-per-second").read_text()) == pytest.approx(
        sweep.summaries[best]["images_per_second"], abs=1e-3
    )
    assert float((outputs / "cost-per-1k-images").read_text()) == pytest.approx(
        runs.loc[best, "cost_per_1k_images"], abs=1e-6
    )
    assert (outputs / "report-uri").read_text() == f"file://{report}"

    summary = json.loads((report / "summary.json").read_text())
    assert summary["best"]["config"] == best
    starts = [pd.Timestamp(s["started_at"]) for s in sweep.summaries.values()]
    ends = [pd.Timestamp(s["finished_at"]) for s in sweep.summaries.values()]
    assert summary["time_elapsed"] == pytest.approx((max(ends) - min(starts)).total_seconds())
    assert summary["num_jobs"] == sum(s["num_jobs"] for s in sweep.summaries.values())
    assert summary["total_node_and_networking_costs"] == pytest.approx(
        summary["cpu_node_cost"] + summary["gpu_node_cost"]
    )
    assert [job["config"] for job in summary["job_data"]] == list(runs.index)

    markdown = (report / "report.md").read_text()
    assert summary["verdict"] in markdown and f"Best configuration: {best} " in summary["verdict"]
    assert summary["verdict"].count("\n") == 0
    assert "no Prometheus data" in markdown
    for name in sweep.summaries:
        assert f"| {name} | {sweep.summaries[name]['processed']} | 0 |" in markdown


def test_latencies_come_from_shard_results(sweep: Sweep):
    runs = load_runs(open_store(sweep.runs_uri))
    for run_ in runs:
        assert len(run_.latencies_ms) == sweep.summaries[run_.row["config"]]["processed"]


def test_explicit_configuration_fields_win_over_the_name(tmp_path, capsys, sweep: Sweep):
    source = open_store(sweep.runs_uri)
    target = open_store(f"file://{tmp_path}/runs")
    summary = json.loads(source.get_bytes("bs2-ss6-p1/report/summary.json"))
    target.put_bytes("nightly/report/summary.json", json.dumps({**summary, "shard_size": 6, "parallelism": 3}).encode())
    (run_,) = load_runs(target)
    assert (run_.row["config"], len(run_.latencies_ms)) == ("bs2-ss6-p3", 0)  # no shard metrics: tolerated
    code, _, _ = bench(capsys, f"file://{tmp_path}/runs", tmp_path)
    assert code == 0 and (tmp_path / "report" / "plots" / "latency_cdf.png").stat().st_size > 0


def test_unreachable_prometheus_still_renders(tmp_path, capsys, sweep: Sweep):
    code, out, _ = bench(capsys, sweep.runs_uri, tmp_path, f"--prometheus-url=http://127.0.0.1:{free_port()}")
    assert code == 0
    assert "no Prometheus data" in out
    for name in ("report.md", "report.html"):
        assert "no Prometheus data" in (tmp_path / "report" / name).read_text()
    assert not (tmp_path / "report" / "plots" / "gpu_util.png").exists()


def test_no_runs_is_a_one_line_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    code, _, err = bench(capsys, f"file://{tmp_path}/empty", tmp_path)
    assert code == 2 and err.count("\n") == 1 and "no runs found" in err
    assert not (tmp_path / "report").exists()


def _slowed(sweep: Sweep, root: Path, factor: float) -> str:
    """A copy of the sweep's runs whose every run took `factor` times as long (its runs URI)."""
    shutil.copytree(sweep.root / "runs", root / "runs")
    for path in (root / "runs").glob("*/report/summary.json"):
        summary = json.loads(path.read_text())
        summary.update(
            wall_seconds=summary["wall_seconds"] * factor,
            time_elapsed=summary["time_elapsed"] * factor,
            images_per_second=summary["images_per_second"] / factor,
        )
        path.write_text(json.dumps(summary))
    return f"file://{root}/runs"


def test_regression_gate(tmp_path, capsys, sweep: Sweep, first_report: Path):
    baseline = f"file://{first_report}/report/runs.parquet"
    code, out, _ = bench(capsys, sweep.runs_uri, tmp_path / "same", f"--baseline={baseline}", "--fail-on-regression=5")
    assert code == 0 and "+0.0%" in out

    # The same measured runs, each taking twice as long: a slower change, without timing one.
    slow = _slowed(sweep, tmp_path / "slow", factor=2.0)
    code, out, _ = bench(capsys, slow, tmp_path / "slow", f"--baseline={baseline}", "--fail-on-regression=10")
    summary = json.loads((tmp_path / "slow" / "report" / "summary.json").read_text())
    assert summary["regression"]["change_pct"] == pytest.approx(-50.0)
    assert code == 1
    assert "REGRESSION" in (tmp_path / "slow" / "report" / "report.md").read_text()

    code, _, err = bench(capsys, sweep.runs_uri, tmp_path / "missing", f"--baseline=file://{tmp_path}/nope.parquet")
    assert code == 2 and err.count("\n") == 1 and "--baseline" in err
    assert not (tmp_path / "missing" / "report").exists()


def test_promql_with_commas_and_quotes_survives_the_cli():
    queries = {"p95": 'histogram_quantile(0.95, sum by (le) (x_bucket{job="a",ns="$namespace"}))'}
    params = parse_args(
        BenchmarkParams,
        [
            "--runs-uri=file:///r",
            "--report-uri=file:///o",
            f"--step-queries={json.dumps(queries)}",
            "--namespace=kiosk",
        ],
    )
    built = build_queries(
        params.gpu_metric, params.gpu_memory_metric, params.cpu_query, params.step_queries, params.namespace
    )
    assert built["p95"] == queries["p95"].replace("$namespace", "kiosk")
    assert built["gpu_util"] == "avg(DCGM_FI_DEV_GPU_UTIL)" and 'namespace="kiosk"' in built["cpu_cores"]


def test_bad_step_queries_is_a_one_line_error(tmp_path, capsys, sweep: Sweep):
    code, _, err = bench(capsys, sweep.runs_uri, tmp_path, "--step-queries=[1]")
    assert code == 2 and err.count("\n") == 1 and "--step-queries" in err
    assert not (tmp_path / "report").exists()


def test_two_runs_of_one_configuration_are_refused(tmp_path, capsys, sweep: Sweep):
    source, target = open_store(sweep.runs_uri), open_store(f"file://{tmp_path}/runs")
    for name in ("a/bs2-ss6-p1", "b/bs2-ss6-p1"):
        target.put_bytes(f"{name}/report/summary.json", source.get_bytes("bs2-ss6-p1/report/summary.json"))
    code, _, err = bench(capsys, f"file://{tmp_path}/runs", tmp_path)
    assert code == 2 and "'a/bs2-ss6-p1' and 'b/bs2-ss6-p1'" in err
