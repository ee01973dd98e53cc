"""Push the run's counts to a Prometheus Pushgateway (batch jobs cannot be scraped)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from steps.cleanup.report import Report
from steps.common import metric_names as names

JOB = names.CLEANUP_JOB


def registry_for(report: Report) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = [names.PREFIX_LABEL, names.DRY_RUN_LABEL]
    gauges = {
        "scanned": Gauge(names.CLEANUP_SCANNED, "Objects listed under the prefix.", labels, registry=registry),
        "matched": Gauge(names.CLEANUP_MATCHED, "Objects older than the threshold.", labels, registry=registry),
        "deleted": Gauge(names.CLEANUP_DELETED, "Objects deleted.", labels, registry=registry),
        "bytes": Gauge(names.CLEANUP_DELETED_BYTES, "Bytes deleted.", labels, registry=registry),
        "noncurrent_deleted": Gauge(
            names.CLEANUP_NONCURRENT_DELETED, "Noncurrent versions deleted.", labels, registry=registry
        ),
        "errors": Gauge(names.CLEANUP_ERRORS, "Deletes that failed for good.", labels, registry=registry),
    }
    dry = str(report.dry_run).lower()
    for prefix, entry in report.per_prefix.items():
        for name, gauge in gauges.items():
            gauge.labels(prefix=prefix, dry_run=dry).set(getattr(entry, name))
    Gauge(names.CLEANUP_ABORTED, "1 when --max-deletes aborted the run.", registry=registry).set(
        1 if report.aborted else 0
    )
    Gauge(names.CLEANUP_EXIT_CODE, "The step's exit code.", registry=registry).set(report.exit_code)
    Gauge(names.CLEANUP_DURATION, "Wall time of the run.", registry=registry).set(report.elapsed_s)
    # Alert on `time() - kiosk_cleanup_last_run_timestamp_seconds` to notice a cron that stopped running.
    Gauge(names.CLEANUP_LAST_RUN, "When the run ended.", registry=registry).set(time.time())
    return registry


def success_registry(report: Report) -> CollectorRegistry:
    registry = CollectorRegistry()
    Gauge(names.CLEANUP_LAST_SUCCESS, "When a run last ended with exit code 0.", registry=registry).set(time.time())
    return registry


def push(address: str, report: Report, *, env: str = "") -> None:
    # Grouped by env and store, so two CronWorkflows on different buckets, or of two envs sharing the
    # Pushgateway, do not overwrite each other.
    grouping = names.grouping(env, **{names.STORE_LABEL: report.store})
    push_to_gateway(address, job=JOB, grouping_key=grouping, registry=registry_for(report), timeout=10)
    if report.exit_code == 0:
        # Its own group: the next run's push replaces the run group, failed or not, but leaves
        # this one, so "time since the last success" survives failures (and alerts on them). A dry run
        # has a group of its own: it must not pass for the real cron's success.
        push_to_gateway(
            address,
            job=JOB,
            grouping_key={**grouping, **names.CLEANUP_SUCCESS_GROUP, names.DRY_RUN_LABEL: str(report.dry_run).lower()},
            registry=success_registry(report),
            timeout=10,
        )
