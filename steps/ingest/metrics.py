"""The run's totals on the Pushgateway: what the dashboards compare shard progress and rejects against."""

from __future__ import annotations

import sys

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from steps.common import metric_names as names


def registry_for(shards: int, accepted: int, rejected: int) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge(names.INGEST_SHARDS, "Shards the run's inference fans out over.", registry=registry).set(shards)
    Gauge(names.INGEST_ACCEPTED, "Images accepted for inference.", registry=registry).set(accepted)
    Gauge(names.INGEST_REJECTED, "Images rejected at ingest (bad or oversized).", registry=registry).set(rejected)
    return registry


def push(gateway: str, run: str, shards: int, accepted: int, rejected: int, *, env: str = "") -> None:
    try:
        # Grouped by run like the infer shards, so the dashboard can join the two on `run`.
        push_to_gateway(
            gateway,
            job=names.INGEST_JOB,
            grouping_key=names.grouping(env, **{names.RUN_LABEL: run}),
            registry=registry_for(shards, accepted, rejected),
            timeout=10,
        )
    except Exception as error:
        print(f"steps.ingest: warning: cannot push metrics to {gateway}: {error}", file=sys.stderr)
