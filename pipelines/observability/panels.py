"""What each dashboard shows: panels as data (title, kind, unit, PromQL), with no Grafana types.

The Grafana builders (`dashboards.py`), the panel list in docs/observability.md and the
Prometheus-backed test all read these specs, so the queries documented and tested are the ones shipped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from pipelines.config import KioskConfig
from steps.common import metric_names as n

#: Where a panel's series come from. "steps": pushed by our steps through the Pushgateway;
#: "controller": the workflow-controller's template metrics; "dcgm": NVIDIA's dcgm-exporter.
Source = Literal["steps", "controller", "dcgm"]
Kind = Literal["timeseries", "stat", "bargauge", "table"]


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""


@dataclass(frozen=True)
class Panel:
    title: str
    kind: Kind
    unit: str
    description: str
    queries: tuple[Query, ...]
    source: Source = "steps"


@dataclass(frozen=True)
class Variable:
    """A dashboard variable: `query` ones list label values, `constant` ones carry config, `custom` a list."""

    name: str
    kind: Literal["query", "constant", "custom"]
    value: str  # the label_values() query, the constant, or the comma-separated options (first: default)
    label: str = ""
    default: str = ""  # a query variable's selected value; empty: All


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    variables: tuple[Variable, ...]
    panels: tuple[Panel, ...]
    tags: tuple[str, ...] = field(default=("kiosk",))


#: The matcher of the selected envs: every series our steps push carries the env's name, and envs
#: may share a Pushgateway (and a Prometheus).
_ENV = f'{n.ENV_LABEL}=~"$env"'


def _env_variable(cfg: KioskConfig) -> Variable:
    """The env picker, on the dashboard's own env by default (the other envs are one click away).

    The envs listed are those with a group on the Pushgateway: each group has a `push_time_seconds`.
    """
    return Variable(n.ENV_LABEL, "query", f"label_values({n.PUSH_TIME}, {n.ENV_LABEL})", "Env", default=cfg.env)


def _run(selector: str = "") -> str:
    """A label matcher block for infer/ingest series of the selected envs and runs."""
    extra = f", {selector}" if selector else ""
    return f'{{{_ENV}, {n.RUN_LABEL}=~"$run"{extra}}}'


def _by_run(aggregation: str, series: str, legend: str) -> Query:
    return Query(f"{aggregation} by ({n.RUN_LABEL}) ({series})", legend)


def _quantiles(by: str, buckets: str, legend: str) -> tuple[Query, ...]:
    """p50 and p95 of a histogram: `buckets` summed by `le` and the `by` label, one series per value
    of `by` (`legend`: its Grafana legend, `{{label}}`).
    """
    return tuple(
        Query(f"histogram_quantile({q}, sum by (le, {by}) ({buckets}))", f"p{int(q * 100)} {legend}")
        for q in (0.5, 0.95)
    )


def pod_price_per_hour(cfg: KioskConfig) -> float:
    """What one infer pod costs an hour: its GPUs at the GPU price, or the CPU price without a GPU."""
    if cfg.gpu.count:
        return round(cfg.gpu.count * cfg.benchmark.gpu_price_per_hour, 6)
    return cfg.benchmark.cpu_price_per_hour


def batch_inference(cfg: KioskConfig) -> DashboardSpec:
    return DashboardSpec(
        uid=f"kiosk-batch-inference-{cfg.namespace}"[:40],
        title=f"Batch inference ({cfg.namespace})",
        description="kiosk batch-inference runs: throughput, failures, progress, latency, GPUs, cost, outcomes.",
        variables=_batch_variables(cfg),
        panels=(*_run_panels(), *_gpu_panels(), *_cost_panels(), *_workflow_panels()),
    )


def _batch_variables(cfg: KioskConfig) -> tuple[Variable, ...]:
    return (
        _env_variable(cfg),
        Variable("run", "query", f"label_values({n.counter(n.INFER_ITEMS)}{{{_ENV}}}, {n.RUN_LABEL})", "Run"),
        Variable("namespace", "constant", cfg.namespace),
        Variable("infer_pod", "constant", cfg.observability.infer_pod_regex),
        Variable("pod_price_per_hour", "constant", f"{pod_price_per_hour(cfg):g}"),
    )


def _run_panels() -> tuple[Panel, ...]:
    """How the selected runs went: throughput, failures, progress, latency and where the time went."""
    items = n.counter(n.INFER_ITEMS)
    latency = n.bucket(n.INFER_ITEM_LATENCY)
    failed = _run(n.STATUS_LABEL + '="failed"')
    return (
        Panel(
            "Images per second",
            "timeseries",
            "short",
            "Sum of the throughput of each run's finished shards (images/s, per shard, pushed at its end).",
            (_by_run("sum", f"{n.INFER_IMAGES_PER_SECOND}{_run()}", "{{run}}"),),
        ),
        Panel(
            "Failed and rejected per run",
            "bargauge",
            "short",
            "Images that failed inference, and images rejected at ingest (bad or oversized), per run.",
            (
                _by_run("sum", f"{items}{failed}", "failed {{run}}"),
                _by_run("max", f"{n.INGEST_REJECTED}{_run()}", "rejected {{run}}"),
            ),
        ),
        Panel(
            "Shard progress (done vs total)",
            "bargauge",
            "short",
            "Shards that pushed their metrics against the shards ingest wrote for the run.",
            (
                _by_run("count", f"{n.INFER_SHARD_SECONDS}{_run()}", "done {{run}}"),
                _by_run("max", f"{n.INGEST_SHARDS}{_run()}", "total {{run}}"),
            ),
        ),
        Panel(
            "Per-image latency p50 / p95",
            "timeseries",
            "s",
            "Download to upload of each image, from the shards' latency histograms.",
            _quantiles(n.RUN_LABEL, f"{latency}{_run()}", "{{run}}"),
        ),
        Panel(
            "Stage-time breakdown",
            "bargauge",
            "s",
            "Busy seconds per pipeline stage (download, decode, infer, upload), summed over the selected runs.",
            (Query(f"sum by ({n.STAGE_LABEL}) ({n.counter(n.INFER_STAGE_SECONDS)}{_run()})", "{{stage}}"),),
        ),
    )


def _gpu_panels() -> tuple[Panel, ...]:
    """dcgm-exporter's view of the infer pods' GPUs."""
    gpu = '{namespace="$namespace", pod=~"$infer_pod"}'
    return (
        Panel(
            "GPU utilisation (infer pods)",
            "timeseries",
            "percent",
            "dcgm-exporter's per-GPU utilisation for the infer pods of this namespace.",
            (Query(f"avg by (pod) ({n.DCGM_GPU_UTIL}{gpu})", "{{pod}}"),),
            source="dcgm",
        ),
        Panel(
            "GPU memory used (infer pods)",
            "timeseries",
            "decmbytes",
            "dcgm-exporter's frame buffer in use (MiB) for the infer pods of this namespace.",
            (Query(f"sum by (pod) ({n.DCGM_FB_USED}{gpu})", "{{pod}}"),),
            source="dcgm",
        ),
    )


def _cost_panels() -> tuple[Panel, ...]:
    """What the runs cost per 1,000 images: pod time and storage requests."""
    items = n.counter(n.INFER_ITEMS)
    ok = _run(n.STATUS_LABEL + '="ok"')
    return (
        Panel(
            "Cost per 1k images",
            "stat",
            "currencyUSD",
            "Infer pod seconds at $pod_price_per_hour (config: gpu.count x benchmark.gpu_price_per_hour), "
            "per 1,000 images processed.",
            (
                Query(
                    f"$pod_price_per_hour / 3600 * sum by ({n.RUN_LABEL}) ({n.INFER_SHARD_SECONDS}{_run()})"
                    f" / sum by ({n.RUN_LABEL}) ({items}{ok}) * 1000",
                    "{{run}}",
                ),
            ),
        ),
        Panel(
            "Storage requests per 1k images",
            "bargauge",
            "short",
            "GET/PUT/HEAD requests the infer shards made per 1,000 images processed (S3 bills each request).",
            (
                Query(
                    f"sum by ({n.RUN_LABEL}, {n.REQUEST_KIND_LABEL}) ({n.counter(n.INFER_STORAGE_REQUESTS)}{_run()})"
                    f" / on ({n.RUN_LABEL}) group_left sum by ({n.RUN_LABEL}) ({items}{ok}) * 1000",
                    "{{run}} {{kind}}",
                ),
            ),
        ),
    )


def _workflow_panels() -> tuple[Panel, ...]:
    """The workflow-controller's template metrics for this namespace."""
    wf = f'{{{n.WORKFLOW_NAMESPACE_LABEL}="$namespace"}}'
    wf_bucket = n.controller(n.bucket(n.WORKFLOW_DURATION)) + wf
    wf_count = n.controller(n.count(n.WORKFLOW_DURATION)) + wf
    return (
        Panel(
            "Workflow duration p50 / p95",
            "timeseries",
            "s",
            "kiosk_workflow_duration_seconds, the workflows' template metric, over the dashboard's range.",
            _quantiles(n.TEMPLATE_LABEL, f"increase({wf_bucket}[$__range])", "{{workflow_template}}"),
            source="controller",
        ),
        Panel(
            "Workflow outcomes",
            "bargauge",
            "short",
            "Finished workflows by template and phase (Succeeded, Failed, Error) over the dashboard's range.",
            (
                Query(
                    f"sum by ({n.TEMPLATE_LABEL}, {n.STATUS_LABEL}) (increase({wf_count}[$__range]))",
                    "{{workflow_template}} {{status}}",
                ),
            ),
            source="controller",
        ),
    )


def retention(cfg: KioskConfig) -> DashboardSpec:
    variables = (
        _env_variable(cfg),
        Variable("store", "query", f"label_values({n.CLEANUP_LAST_RUN}{{{_ENV}}}, {n.STORE_LABEL})", "Store"),
        Variable("dry_run", "custom", "false,true", "Dry run"),
    )
    return DashboardSpec(
        uid=f"kiosk-retention-{cfg.namespace}"[:40],
        title=f"Retention ({cfg.namespace})",
        description="kiosk retention-cleanup runs: deletions, errors, aborts, freshness.",
        variables=variables,
        panels=(*_deletion_panels(), *_health_panels(), _scan_panel()),
    )


#: The stores and kind of run (dry or not) the retention dashboard selects.
_CLEANUP_RUNS = f'{{{_ENV}, {n.STORE_LABEL}=~"$store", {n.DRY_RUN_LABEL}="$dry_run"}}'


def _per_prefix(metric: str, legend: str = "{{prefix}}") -> Query:
    """`metric` summed per store and prefix, for the selected stores and kind of run (dry or not)."""
    return Query(f"sum by ({n.STORE_LABEL}, {n.PREFIX_LABEL}) ({metric}{_CLEANUP_RUNS})", legend)


def _deletion_panels() -> tuple[Panel, ...]:
    """What the cleanup runs deleted, and the deletes that failed."""
    return (
        Panel(
            "Deleted objects per prefix",
            "timeseries",
            "short",
            "Objects each run deleted, per prefix (each run replaces the last: one step per run).",
            (_per_prefix(n.CLEANUP_DELETED),),
        ),
        Panel(
            "Deleted bytes per prefix",
            "timeseries",
            "bytes",
            "Bytes each run deleted, per prefix.",
            (_per_prefix(n.CLEANUP_DELETED_BYTES),),
        ),
        Panel(
            "Delete errors",
            "timeseries",
            "short",
            "Deletes that failed for good in the last run, per prefix.",
            (_per_prefix(n.CLEANUP_ERRORS),),
        ),
    )


def _health_panels() -> tuple[Panel, ...]:
    """Whether cleanup runs at all: --max-deletes aborts, and when it last succeeded."""
    store = f'{{{_ENV}, {n.STORE_LABEL}=~"$store"}}'
    return (
        Panel(
            "--max-deletes aborts",
            "stat",
            "short",
            "1 when the last run stopped before deleting anything because more objects matched than --max-deletes.",
            (Query(f"max by ({n.STORE_LABEL}) ({n.CLEANUP_ABORTED}{store})", "{{store}}"),),
        ),
        Panel(
            "Time since the last successful run",
            "stat",
            "s",
            "Since a run of the selected kind (dry or not) last ended with exit code 0.",
            (
                Query(
                    f"time() - max by ({n.STORE_LABEL}) ({n.CLEANUP_LAST_SUCCESS}{_CLEANUP_RUNS})",
                    "{{store}}",
                ),
            ),
        ),
    )


def _scan_panel() -> Panel:
    """How much each prefix holds against what the age threshold matches."""
    return Panel(
        "Matched vs scanned objects",
        "timeseries",
        "short",
        "Objects listed under each prefix, and those older than the threshold.",
        (
            _per_prefix(n.CLEANUP_SCANNED, "scanned {{prefix}}"),
            _per_prefix(n.CLEANUP_MATCHED, "matched {{prefix}}"),
        ),
    )


def all_dashboards(cfg: KioskConfig) -> tuple[DashboardSpec, ...]:
    return batch_inference(cfg), retention(cfg)
