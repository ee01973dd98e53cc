"""The benchmark step: a sweep's runs -> runs table, Prometheus metrics, cost, plots, report, verdict.

Everything that can reject the input (runs, baseline, Prometheus queries) is checked before the
first byte is written, so a failed step leaves no half report behind. summary.json goes last.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from steps.benchmark import plots
from steps.benchmark.billing import lane_pods, load_workflow
from steps.benchmark.costs import Prices, add_costs
from steps.benchmark.params import BenchmarkParams
from steps.benchmark.prom import PromData, build_queries, collect
from steps.benchmark.regression import Regression, compare, load_baseline
from steps.benchmark.report import Report, html_page, markdown, summary_table
from steps.benchmark.runs import Run, best, load_runs
from steps.common.outputs import write_outputs
from steps.common.storage import Store, open_store

REGRESSION_EXIT = 1
#: The best run's fields in summary.json.
BEST_KEYS = (
    "config",
    "batch_size",
    "shard_size",
    "parallelism",
    "images_per_second",
    "latency_p95_ms",
    "cost_per_1k_images",
)


def _clean(value: Any) -> Any:
    """JSON-safe: NaN -> null, timestamps -> ISO-8601, numpy scalars -> Python."""
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{k: _clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _verdict(top: pd.Series, frame: pd.DataFrame) -> str:
    text = f"Best configuration: {top['config']} at {top['images_per_second']:.2f} images/s"
    if math.isfinite(top["latency_p95_ms"]):
        text += f", p95 latency {top['latency_p95_ms']:.1f} ms"
    if math.isfinite(top["cost_per_1k_images"]):
        text += f", ${top['cost_per_1k_images']:.4g} per 1k images"
    if "gpu_util_mean" in frame.columns and math.isfinite(top.get("gpu_util_mean", math.nan)):
        text += f", GPU utilisation {top['gpu_util_mean']:.0f}%"
    if top["failed"]:
        text += f" (every run had failures; this one {int(top['failed'])})"
    costs = frame[frame["cost_per_1k_images"].notna() & (frame["processed"] > 0)]
    if len(costs):
        cheapest = costs.loc[costs["cost_per_1k_images"].idxmin()]
        if cheapest["config"] != top["config"] and cheapest["cost_per_1k_images"] < top["cost_per_1k_images"]:
            text += (
                f"; cheapest is {cheapest['config']} at ${cheapest['cost_per_1k_images']:.4g} per 1k images "
                f"({cheapest['images_per_second']:.2f} images/s)"
            )
    return text + f" ({len(frame)} configurations)."


def _regression_note(regression: Regression, threshold: float) -> str:
    note = (
        f"Best throughput {regression.current_images_per_second:.2f} images/s ({regression.current_best}) vs "
        f"baseline {regression.baseline_images_per_second:.2f} images/s ({regression.baseline_best}): "
        f"{regression.change_pct:+.1f}%."
    )
    if threshold > 0:
        failed = regression.drop_pct > threshold
        note += f" {'REGRESSION' if failed else 'OK'}: threshold is a {threshold:g}% drop."
    return note


def _legacy(frame: pd.DataFrame) -> dict[str, Any]:
    """The old kiosk-benchmarking top-level names, so dashboards built on them can be mapped."""
    span = (frame["finished_at"].max() - frame["started_at"].min()).total_seconds()
    return {
        "time_elapsed": span,
        "num_jobs": int(frame["num_jobs"].sum()),
        "cpu_node_cost": float(frame["cpu_node_cost"].sum()),
        "gpu_node_cost": float(frame["gpu_node_cost"].sum()),
        # Node costs only: network egress is not measured (the old field's name is kept as is).
        "total_node_and_networking_costs": float(frame["total_cost"].sum()),
        "job_data": _records(frame[["config", "num_jobs", "time_elapsed", "processed", "failed", "total_cost"]]),
    }


@dataclass(frozen=True)
class _Sweep:
    """What the step read: every run, with its costs and Prometheus metrics, and the baseline."""

    runs: list[Run]
    frame: pd.DataFrame
    billing_note: str
    baseline: pd.DataFrame | None
    prom: PromData
    step_columns: list[str]


def _read_sweep(params: BenchmarkParams, store_args: dict[str, Any]) -> _Sweep:
    """Everything that can reject the input, before the first byte of the report is written."""
    queries = build_queries(
        params.gpu_metric, params.gpu_memory_metric, params.cpu_query, params.step_queries, params.namespace
    )
    runs = load_runs(open_store(params.runs_uri, **store_args))
    workflow, billing_note = load_workflow(params.workflow, **store_args)
    billed = lane_pods(workflow) if workflow is not None else {}
    frame = add_costs(pd.DataFrame([r.row for r in runs]), Prices.from_params(params), billed)
    baseline = load_baseline(params.baseline, **store_args) if params.baseline else None
    prom = collect(params.prometheus_url, frame, queries, lag=params.prometheus_lag_seconds)
    step_columns: list[str] = []
    if prom.available:
        metrics = pd.DataFrame.from_dict(prom.per_run, orient="index")
        frame = frame.merge(metrics, left_on="config", right_index=True, how="left")
        builtin = {"gpu_util_mean", "gpu_mem_mib_mean", "cpu_cores_mean"}
        step_columns = [c for c in metrics.columns if c.endswith("_mean") and c not in builtin]
    return _Sweep(runs, frame, billing_note, baseline, prom, step_columns)


def _charts(sweep: _Sweep) -> dict[str, bytes]:
    frame = sweep.frame
    charts = {
        "throughput.png": plots.throughput(frame),
        "latency_cdf.png": plots.latency_cdf(frame, {r.row["config"]: r.latencies_ms for r in sweep.runs}),
        "stages.png": plots.stages(frame),
    }
    gpu_chart = plots.gpu_utilisation(sweep.prom.series)
    if gpu_chart is not None:
        charts["gpu_util.png"] = gpu_chart
    return charts


def _cost_note(prices: Prices, sweep: _Sweep) -> str:
    sources = ", ".join(sorted(set(sweep.frame["billing_source"])))
    return (
        f"{prices.formula()} Lane pod seconds are each infer lane pod's start to finish in the Workflow status "
        "(model load and idle waits included: what the cluster bills); images/s is images over the lanes' first "
        "start to last finish. Without the Workflow status, lanes are charged the in-step wall time each (an "
        f"estimate). Prices come from configuration. Billing source: {sources} ({sweep.billing_note})."
    )


def _report(params: BenchmarkParams, sweep: _Sweep) -> Report:
    frame, prom = sweep.frame, sweep.prom
    regression = compare(frame, sweep.baseline, params.baseline) if sweep.baseline is not None else None
    return Report(
        title=f"Benchmark report: {params.runs_uri}",
        verdict=_verdict(best(frame), frame),
        runs=frame,
        prometheus_note=prom.note,
        queries=prom.queries if prom.available else {},
        cost_note=_cost_note(Prices.from_params(params), sweep),
        plots=_charts(sweep),
        step_columns=sweep.step_columns,
        regression=regression,
        regression_note=_regression_note(regression, params.fail_on_regression) if regression else "",
    )


def _write_report(out: Store, report: Report) -> None:
    """Plots, tables, markdown and HTML; summary.json goes last, once the rest is there."""
    frame = report.runs
    if "gpu_util.png" not in report.plots:  # a rerun into the same prefix must not leave an earlier GPU plot
        out.delete_many(["plots/gpu_util.png"])
    for name, png in report.plots.items():
        out.put_bytes(f"plots/{name}", png, content_type="image/png")
    out.put_bytes("runs.csv", frame.to_csv(index=False).encode(), content_type="text/csv")
    parquet = io.BytesIO()
    frame.to_parquet(parquet, index=False)
    out.put_bytes("runs.parquet", parquet.getvalue(), content_type="application/vnd.apache.parquet")
    out.put_bytes("report.md", markdown(report).encode(), content_type="text/markdown")
    out.put_bytes("report.html", html_page(report).encode(), content_type="text/html")


def _summary(report: Report, prom: PromData, out: Store) -> dict[str, Any]:
    top = best(report.runs)
    headers, rows = summary_table(report)
    return {
        "verdict": report.verdict,
        "best": {k: _clean(top[k]) for k in BEST_KEYS},
        "report_uri": out.uri,
        "report_html": out.uri_for("report.html"),
        "prometheus": {"available": prom.available, "note": prom.note, "queries": prom.queries},
        "regression": report.regression.as_dict() if report.regression else None,
        "table": {"headers": headers, "rows": rows},
        "runs": _records(report.runs),
        **_legacy(report.runs),
    }


def _output_parameters(params: BenchmarkParams, top: pd.Series) -> None:
    cost = top["cost_per_1k_images"]
    write_outputs(
        params.outputs_dir,
        {
            "best-config": str(top["config"]),
            "images-per-second": f"{top['images_per_second']:.3f}",
            "cost-per-1k-images": f"{cost:.6f}" if math.isfinite(cost) else "",
            "report-uri": params.report_uri.rstrip("/"),
        },
    )


def run(params: BenchmarkParams) -> int:
    store_args: dict[str, Any] = {"s3_endpoint": params.s3_endpoint, "max_attempts": params.s3_max_attempts}
    sweep = _read_sweep(params, store_args)
    report = _report(params, sweep)
    out = open_store(params.report_uri, **store_args)
    _write_report(out, report)
    summary = _summary(report, sweep.prom, out)
    out.put_bytes("summary.json", json.dumps(summary, indent=2).encode(), content_type="application/json")
    _output_parameters(params, best(report.runs))
    print(f"benchmark: {report.verdict}")
    print(f"benchmark: {sweep.prom.note}")
    print(f"benchmark: report at {out.uri_for('report.html')}")
    regression = report.regression
    if regression is not None:
        print(f"benchmark: {report.regression_note}")
        if params.fail_on_regression > 0 and regression.drop_pct > params.fail_on_regression:
            return REGRESSION_EXIT
    return 0
