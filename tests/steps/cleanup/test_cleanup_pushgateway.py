"""Pruning the Pushgateway groups of old batch runs, on a real Pushgateway."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

from prometheus_client import CollectorRegistry, Gauge, push_to_gateway

from steps.cleanup.main import run
from steps.cleanup.params import CleanupParams
from steps.cleanup.pushgateway import prune
from steps.common import metric_names as names
from tests.fixtures.stepkit import run_step
from tests.fixtures.waiting import wait_until


def _push(address: str, job: str, **grouping: str) -> None:
    registry = CollectorRegistry()
    Gauge("kiosk_test_value", "A value", registry=registry).set(1)
    push_to_gateway(address, job=job, grouping_key=grouping, registry=registry, timeout=10)


def _groups(address: str) -> list[dict[str, str]]:
    with urllib.request.urlopen(f"http://{address}/api/v1/metrics", timeout=10) as response:
        return sorted((g["labels"] for g in json.load(response)["data"]), key=lambda g: sorted(g.items()))


def _pushed_at(address: str) -> dict[str, float]:
    """The Pushgateway's own push time of each group, by its `run` label."""
    with urllib.request.urlopen(f"http://{address}/api/v1/metrics", timeout=10) as response:
        data = json.load(response)["data"]
    return {g["labels"].get("run", ""): float(g["push_time_seconds"]["metrics"][0]["value"]) for g in data}


def test_old_batch_run_groups_go_and_the_rest_stay(pushgateway: str) -> None:
    _push(pushgateway, names.INFER_JOB, run="old", shard="lane-0")
    _push(pushgateway, names.INGEST_JOB, run="old")
    _push(pushgateway, names.CLEANUP_JOB, store="file:///s", **names.CLEANUP_SUCCESS_GROUP)  # never pruned
    old = max(_pushed_at(pushgateway).values())

    def push_new() -> float | None:
        _push(pushgateway, names.INFER_JOB, run="new", shard="lane-0")
        new = _pushed_at(pushgateway)["new"]
        return new if new > old else None  # pushed after the old groups by the gateway's own clock

    new = wait_until(push_new, 30, "a push stamped later than the old groups")
    # `now` an hour after the moment between the pushes: the old groups are over an hour old, the new one is not.
    now, hour = (old + new) / 2 + 3600, timedelta(hours=1)
    before = _groups(pushgateway)
    assert prune(pushgateway, hour, dry_run=True, now=now) == 2
    assert _groups(pushgateway) == before  # a dry run only counts
    assert prune(pushgateway, hour, dry_run=False, now=now) == 2
    left = _groups(pushgateway)
    assert {g["job"] for g in left} == {names.INFER_JOB, names.CLEANUP_JOB}
    assert [g.get("run") for g in left if g["job"] == names.INFER_JOB] == ["new"]
    assert prune(pushgateway, hour, dry_run=False, now=now) == 0


def test_pruning_leaves_other_envs_groups(pushgateway: str) -> None:
    for env in ("dev", "prod"):
        _push(pushgateway, names.INFER_JOB, **names.grouping(env, run="r1", shard="lane-0"))
        _push(pushgateway, names.INGEST_JOB, **names.grouping(env, run="r1"))
    _push(pushgateway, names.INGEST_JOB, run="r1")  # no env: the env named ""
    later = max(_pushed_at(pushgateway).values()) + 86400  # every group is a day old by then
    assert prune(pushgateway, timedelta(hours=1), dry_run=False, now=later, env="dev") == 2
    left = _groups(pushgateway)
    assert sorted(g.get("env", "") for g in left) == ["", "prod", "prod"]
    assert prune(pushgateway, timedelta(hours=1), dry_run=False, now=later) == 1
    assert sorted(g.get("env", "") for g in _groups(pushgateway)) == ["prod", "prod"]


def test_the_step_reports_what_it_pruned(pushgateway: str, tmp_path: Path, capsys) -> None:
    _push(pushgateway, names.INFER_JOB, run="recent", shard="lane-0")
    params = CleanupParams(
        store=f"file://{tmp_path}/store",
        prefix=["uploads"],
        older_than="3d",
        pushgateway=pushgateway,
        prune_metrics_older_than="1d",
        outputs_dir=str(tmp_path / "out"),
        json=True,
    )
    (tmp_path / "store" / "uploads").mkdir(parents=True)
    assert run(params) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["metrics_groups_pruned"] == 0  # pushed just now: younger than a day
    assert any(g.get("run") == "recent" for g in _groups(pushgateway))


def test_prune_without_a_pushgateway_or_with_a_bad_age_is_refused(tmp_path: Path, capsys) -> None:
    base = [f"--store=file://{tmp_path}/store", "--prefix=uploads", "--older-than=3d", f"--outputs-dir={tmp_path}/o"]
    for extra, wanted in (
        (["--prune-metrics-older-than=14d"], "needs --pushgateway"),
        (["--prune-metrics-older-than=soon", "--pushgateway=127.0.0.1:9"], "--prune-metrics-older-than"),
    ):
        assert run_step("steps.cleanup", CleanupParams, run, base + extra) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and wanted in err, err
    assert not (tmp_path / "o").exists()
