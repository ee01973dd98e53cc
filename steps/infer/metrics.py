"""Per-shard metrics: a JSON document for the report step and Prometheus metrics for dashboards.

Pods of a fan-out live for seconds, so nothing would scrape them: with --pushgateway the registry
is pushed once at the end, grouped by shard so parallel shards do not overwrite each other.
"""

from __future__ import annotations

import resource
import sys
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

from steps.common import metric_names as names
from steps.infer.params import InferParams
from steps.infer.pipeline import ItemResult

STAGES = ("download", "decode", "infer", "upload")
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    def __init__(self, shard: str, providers: list[str], run: str = "", env: str = "") -> None:
        self.shard = shard
        self.run = run
        self.env = env
        self.registry = CollectorRegistry()
        self.items = Counter(names.INFER_ITEMS, "Items by outcome.", [names.STATUS_LABEL], registry=self.registry)
        self.latency = Histogram(
            names.INFER_ITEM_LATENCY,
            "Download to upload, per item.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.stage = Counter(
            names.INFER_STAGE_SECONDS, "Busy time per stage.", [names.STAGE_LABEL], registry=self.registry
        )
        self.batch = Histogram(
            names.INFER_BATCH_SIZE,
            "Images per ONNX Runtime call.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        )
        self.requests = Counter(
            names.INFER_STORAGE_REQUESTS,
            "Storage requests for items (inputs, outputs, resume checks), by kind.",
            [names.REQUEST_KIND_LABEL],
            registry=self.registry,
        )
        self.ips = Gauge(names.INFER_IMAGES_PER_SECOND, "Shard throughput.", registry=self.registry)
        # With a price per hour, what dashboards turn into a cost per 1k images.
        self.seconds = Gauge(
            names.INFER_SHARD_SECONDS, "Wall seconds of the shard, process start to upload.", registry=self.registry
        )
        self.provider = Gauge(
            names.INFER_PROVIDER_ACTIVE,
            "Execution providers the session runs on.",
            ["provider"],
            registry=self.registry,
        )
        for name in providers:
            self.provider.labels(name).set(1)
        # Zero-valued series from the start: a run without failures shows 0 failed, not "no data".
        for status in ("ok", "failed", "resumed"):
            self.items.labels(status)
        for stage in STAGES:
            self.stage.labels(stage)

    def record(self, result: ItemResult) -> None:
        self.items.labels(result.status).inc()
        if result.status == "ok":
            self.latency.observe(result.latency_s)
        for stage, seconds in result.stages.items():
            self.stage.labels(stage).inc(seconds)

    def record_requests(self, requests: dict[str, int]) -> None:
        for kind, count in requests.items():
            self.requests.labels(kind).inc(count)

    def record_batch(self, size: int, seconds: float) -> None:
        self.batch.observe(size)

    def push(self, gateway: str) -> None:
        try:
            # Shard names repeat across runs (shard-00000 in every run): without the run in the key,
            # concurrent runs, such as a benchmark sweep's, would overwrite each other's series.
            grouping = {names.SHARD_LABEL: self.shard}
            if self.run:
                grouping = {names.RUN_LABEL: self.run, **grouping}
            grouping = names.grouping(self.env, **grouping)
            push_to_gateway(gateway, job=names.INFER_JOB, grouping_key=grouping, registry=self.registry, timeout=10)
        except Exception as error:  # metrics are best effort: never fail a finished shard on them
            print(f"steps.infer: warning: cannot push metrics to {gateway}: {error}", file=sys.stderr)


def peak_rss_mb() -> float:
    # VmHWM is this process's own high-water mark; ru_maxrss can report the peak of the parent that
    # forked us (Linux carries it across fork+exec), e.g. a big benchmark or runner process.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def summary(
    results: list[ItemResult], *, started: datetime, finished: datetime, wall_s: float, **extra: object
) -> dict:
    ok = [r for r in results if r.status == "ok"]
    failed = [r for r in results if r.status == "failed"]
    resumed = sum(r.status == "resumed" for r in results)
    latencies = np.array([r.latency_s for r in ok]) * 1000
    pct = (lambda q: round(float(np.percentile(latencies, q)), 2)) if len(latencies) else (lambda q: None)
    return {
        **extra,
        "started_at": started.isoformat(),
        "finished_at": finished.isoformat(),
        "wall_seconds": round(wall_s, 4),
        "items": len(results),
        "processed": len(ok) + resumed,
        "processed_now": len(ok),
        "resumed": resumed,
        "failed": len(failed),
        "images_per_second": round(len(ok) / wall_s, 3) if wall_s > 0 else 0.0,
        "stage_seconds": {s: round(sum(r.stages.get(s, 0.0) for r in results), 4) for s in STAGES},
        "latency_ms": {
            "p50": pct(50),
            "p95": pct(95),
            "p99": pct(99),
            "mean": round(float(latencies.mean()), 2) if len(latencies) else None,
        },
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "failures": [{"key": r.key, "reason": r.reason} for r in failed],
    }


def shard_summary(
    results: list[ItemResult],
    params: InferParams,
    *,
    shard: str,
    shard_uri: str,
    postprocess: str,
    providers: Sequence[str],
    started: datetime,
    wall_s: float,
    **extra: object,
) -> dict:
    """The metrics document of one shard, finished now: what both infer modes write (`extra` adds
    a mode's own fields: a lane's generation, a single shard's request counts).
    """
    return summary(
        results,
        started=started,
        finished=datetime.now(UTC),
        wall_s=wall_s,
        shard=shard,
        shard_uri=shard_uri,
        output_uri=params.output_uri,
        model_uri=params.model_uri,
        postprocess=postprocess,
        device=params.device,
        providers=list(providers),
        batch_size=params.batch_size,
        **extra,
    )
