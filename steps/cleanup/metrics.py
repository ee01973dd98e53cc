"""Push the run's counts to a Prometheus Pushgateway (batch jobs cannot be scraped)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from steps.cleanup.report import Report

JOB = "kiosk-cleanup"


def registry_for(report: Report) -> CollectorRegistry:
    registry = CollectorRegistry()
    labels = ["prefix", "dry_run"]
    gauges = {
        "scanned": Gauge(
            "kiosk_cleanup_scanned_objects", "Objects listed under the prefix.", labels, registry=registry
        ),
        "matched": Gauge(
            "kiosk_cleanup_matched_objects", "Objects older than the threshold.", labels, registry=registry
        ),
        "deleted": Gauge("kiosk_cleanup_deleted_objects", "Objects deleted.", labels, registry=registry),
        "bytes": Gauge("kiosk_cleanup_deleted_bytes", "Bytes deleted.", labels, registry=registry),
        "noncurrent_deleted": Gauge(
            "kiosk_cleanup_noncurrent_deleted_versions", "Noncurrent versions deleted.", labels, registry=registry
        ),
        "errors": Gauge("kiosk_cleanup_errors", "Deletes that failed for good.", labels, registry=registry),
    }
    dry = str(report.dry_run).lower()
    for prefix, entry in report.per_prefix.items():
        for name, gauge in gauges.items():
            gauge.labels(prefix=prefix, dry_run=dry).set(getattr(entry, name))
    Gauge("kiosk_cleanup_aborted", "1 when --max-deletes aborted the run.", registry=registry).set(
        1 if report.aborted else 0
    )
    Gauge("kiosk_cleanup_exit_code", "The step's exit code.", registry=registry).set(report.exit_code)
    Gauge("kiosk_cleanup_duration_seconds", "Wall time of the run.", registry=registry).set(report.elapsed_s)
    # Alert on `time() - kiosk_cleanup_last_run_timestamp_seconds` to notice a cron that stopped running.
    Gauge("kiosk_cleanup_last_run_timestamp_seconds", "When the run ended.", registry=registry).set(time.time())
    return registry


def push(address: str, report: Report) -> None:
    # Grouped by store, so two CronWorkflows on different buckets do not overwrite each other.
    push_to_gateway(address, job=JOB, grouping_key={"store": report.store}, registry=registry_for(report), timeout=10)
