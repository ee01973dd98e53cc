"""Exactly-once outputs under slow failures: a lane frozen (SIGSTOP) past its claim's TTL wakes
after another lane took its shard over and committed it. Real `python -m steps.infer` processes,
on the file store and on the S3 emulator (moto).
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from steps.common.storage import open_store
from steps.infer.claims import claims_prefix
from tests.fixtures.fault_proxy import FaultProxy
from tests.fixtures.stepkit import StoreCase
from tests.steps.infer.test_lanes import _claim_log, _Gate, _lane, _seed, _start, _wait_for

IMAGES, SHARD_SIZE = 12, 3


def _visible(case: StoreCase) -> dict[str, str]:
    """Every object a reader of the run's outputs sees, with its ETag: outputs, results, metrics, commits."""
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    keys = {o.key: o.etag for prefix in ("out", "run/results", "run/metrics") for o in store.list(prefix)}
    keys |= {o.key: o.etag for o in store.list(f"run/{claims_prefix()}") if o.key.endswith("/commit.json")}
    return keys


def _commits(case: StoreCase) -> dict[str, dict]:
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    prefix = f"run/{claims_prefix()}"
    found = {}
    for info in store.list(prefix):
        shard, name = info.key[len(prefix) + 1 :].split("/")
        if name == "commit.json":
            found[shard] = json.loads(store.get_bytes(info.key))
    return found


def _frozen_lane_0(case: StoreCase, tmp_path: Path, endpoint: str | None) -> subprocess.Popen:
    """Lane 0 of 2, SIGSTOPped while it holds its first claim, mid-shard."""
    gate = _Gate(tmp_path / "store", "in/0001.png") if case.kind == "file" else None
    lane0 = _start(_lane(case, tmp_path, 0, 2, "--claim-ttl=2", "--batch-size=1", endpoint=endpoint))
    if gate is not None:  # blocked reading image 1 of shard-00000 (a FIFO): surely mid-shard
        _wait_for(lambda: gate.reader_blocked() or lane0.poll() is not None, what="lane 0 to reach image 1")
    else:  # every request of lane 0 is slowed by the proxy: its first claim is surely mid-shard
        _wait_for(lambda: any(c["lane"] == 0 for cs in _claim_log(case).values() for c in cs), what="a claim")
    assert lane0.poll() is None, lane0.communicate()[1][-3000:]
    lane0.send_signal(signal.SIGSTOP)
    if gate is not None:
        gate.release()
    return lane0


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_stalled_lane_wakes_after_takeover_and_changes_nothing(kind, tmp_path, request):
    if kind == "file":
        case = StoreCase("file", f"file://{tmp_path}/store")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        case = StoreCase("s3", bucket.uri, bucket.endpoint)
    _seed(case, tmp_path, IMAGES, SHARD_SIZE)
    with FaultProxy(case.endpoint or "http://127.0.0.1:9") as proxy:
        proxy.delay(0.2 if kind == "s3" else 0.0)
        lane0 = _frozen_lane_0(case, tmp_path, proxy.url if kind == "s3" else None)
        try:
            rescuer = subprocess.run(
                _lane(case, tmp_path, 1, 2, "--claim-ttl=2"), capture_output=True, text=True, timeout=300
            )
            assert rescuer.returncode == 0, rescuer.stderr[-3000:]
            assert "took over shard-00000 generation 0" in rescuer.stderr, rescuer.stderr[-3000:]
            before = _visible(case)
            proxy.delay(0.0)
        finally:
            lane0.send_signal(signal.SIGCONT)
        _out, err = lane0.communicate(timeout=120)
    # The frozen lane woke, learnt it lost its claims, and wrote nothing anyone reads.
    assert _visible(case) == before, err[-3000:]
    assert lane0.returncode == 0, err[-3000:]
    assert "lost its claim of shard-00000 generation 0" in err or "commit refused" in err, err[-3000:]
    assert "shard-00000 generation 0: commit refused" in err, err[-3000:]

    commits = _commits(case)
    assert sorted(commits) == [f"shard-{i:05d}" for i in range(IMAGES // SHARD_SIZE)]  # one commit per shard
    assert all(c["status"] == "done" for c in commits.values())
    assert commits["shard-00000"]["generation"] >= 1 and commits["shard-00000"]["lane"] == 1
    assert sum(c["metrics"]["processed"] for c in commits.values()) == IMAGES
    keys = sorted(r["key"] for c in commits.values() for r in c["results"])
    assert keys == [f"{i:04d}.png" for i in range(IMAGES)]
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    published = sorted(
        json.loads(line)["key"] for o in store.list("run/results") for line in store.get_bytes(o.key).splitlines()
    )
    assert published == keys
    for shard, commit in commits.items():  # the published metrics are the committed generation's
        assert json.loads(store.get_bytes(f"run/metrics/{shard}.json"))["generation"] == commit["generation"]
    assert sorted(o.key for o in store.list("out") if o.key.endswith(".json")) == [f"out/{k}.json" for k in keys]
