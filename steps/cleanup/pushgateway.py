"""Prune the Pushgateway groups of batch runs by the age of their last push.

ingest pushes one group per run and each infer lane one per run and lane, with the run in the
grouping key, so no later push replaces them: without pruning, the Pushgateway (and every scrape of
it) grows by a few groups per run for ever. Prometheus keeps the history it scraped; a pruned
group's series only stop being current. The cleanup step's own groups (its last success included,
which an alert watches) are never pruned, and neither are another env's groups: envs sharing a
Pushgateway each prune their own (a group without an `env` label belongs to the env named "").
"""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import timedelta

from prometheus_client import delete_from_gateway

from steps.common import metric_names as names

PRUNED_JOBS = (names.INGEST_JOB, names.INFER_JOB)


def _base(address: str) -> str:
    return address.rstrip("/") if "://" in address else f"http://{address.rstrip('/')}"


def stale_groups(
    address: str, older_than: timedelta, now: float | None = None, *, env: str = ""
) -> list[dict[str, str]]:
    """The grouping labels (job included) of `env`'s batch-run groups last pushed more than `older_than` ago."""
    with urllib.request.urlopen(f"{_base(address)}/api/v1/metrics", timeout=10) as response:
        groups = json.load(response)["data"]
    now = time.time() if now is None else now
    stale = []
    for group in groups:
        labels = dict(group["labels"])
        if labels.get("job") not in PRUNED_JOBS or labels.get(names.ENV_LABEL, "") != env:
            continue
        pushed = float(group["push_time_seconds"]["metrics"][0]["value"])
        if now - pushed > older_than.total_seconds():
            stale.append(labels)
    return stale


def prune(address: str, older_than: timedelta, dry_run: bool, now: float | None = None, *, env: str = "") -> int:
    """Delete (or, in a dry run, only count) `env`'s stale batch-run groups as of `now` (default: the
    clock); how many there were.
    """
    stale = stale_groups(address, older_than, now, env=env)
    if not dry_run:
        for labels in stale:
            job = labels.pop("job")
            delete_from_gateway(address, job=job, grouping_key=labels, timeout=10)
    return len(stale)
