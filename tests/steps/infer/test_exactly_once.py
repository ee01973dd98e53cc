"""Exactly-once outputs under slow failures: a lane frozen (SIGSTOP) past its claim's TTL wakes
after another lane took its shard over and committed it. Real `python -m steps.infer` processes,
on the file store and on the S3 emulator (moto).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from steps.common.storage import open_store
from steps.infer.claims import claims_prefix
from steps.report.main import run as report
from steps.report.params import ReportParams
from testkit.fault_proxy import FaultProxy
from tests.fixtures.stepkit import StoreCase, run_step
from tests.fixtures.waiting import wait_until
from tests.steps.infer.lane_case import Gate, claim_log, lane_command, read_commits, seed, start_lane

IMAGES, SHARD_SIZE = 12, 3


def _visible(case: StoreCase) -> dict[str, bytes]:
    """The bytes of every object a reader of the run's outputs sees: outputs, results, metrics, commits.

    Bytes, not ETags: a lane frozen mid-publish of a shard it committed before the stall finishes
    that publish when it wakes, rewriting the same bytes (new ETags on the file store), which is
    right: publishing is idempotent.
    """
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    keys = [o.key for prefix in ("out", "run/results", "run/metrics") for o in store.list(prefix)]
    keys += [o.key for o in store.list(f"run/{claims_prefix()}") if o.key.endswith("/commit.json")]
    return {key: store.get_bytes(key) for key in keys}


def _frozen_lane_0(case: StoreCase, tmp_path: Path, endpoint: str | None) -> subprocess.Popen:
    """Lane 0 of 2, SIGSTOPped while it holds its first claim, mid-shard."""
    gate = Gate(tmp_path / "store", "in/0001.png") if case.kind == "file" else None
    lane0 = start_lane(lane_command(case, tmp_path, 0, 2, "--claim-ttl=2", "--batch-size=1", endpoint=endpoint))
    if gate is not None:  # blocked reading image 1 of shard-00000 (a FIFO): surely mid-shard
        wait_until(lambda: gate.reader_blocked() or lane0.poll() is not None, 120, "lane 0 to reach image 1", poll=0.05)
    else:  # every request of lane 0 is slowed by the proxy: its first claim is surely mid-shard
        wait_until(
            lambda: any(c["lane"] == 0 for cs in claim_log(case).values() for c in cs), 120, "a claim", poll=0.05
        )
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
    seed(case, tmp_path, IMAGES, SHARD_SIZE)
    with FaultProxy(case.endpoint or "http://127.0.0.1:9") as proxy:
        proxy.delay(0.2 if kind == "s3" else 0.0)
        lane0 = _frozen_lane_0(case, tmp_path, proxy.url if kind == "s3" else None)
        try:
            rescuer = subprocess.run(
                lane_command(case, tmp_path, 1, 2, "--claim-ttl=2"), capture_output=True, text=True, timeout=300
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

    commits = read_commits(case)
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


class _Poison:
    """An input that kills whichever worker reads it, as the OOM killer kills a pod decoding a
    decompression bomb: the image is a FIFO, and once a lane has opened it to read, the test
    SIGKILLs that lane. (A bomb under RLIMIT_AS would not do: the decoder's MemoryError is caught
    and costs one item, which is right, and no real worker dies.)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        path.unlink()
        os.mkfifo(path)

    def kill_reader(self, proc: subprocess.Popen) -> bool:
        """SIGKILL `proc` once it reads the poison; False when it exited first."""

        def reader_or_exit() -> tuple[int | None] | None:
            if proc.poll() is not None:
                return (None,)
            try:
                return (os.open(self.path, os.O_WRONLY | os.O_NONBLOCK),)
            except OSError:  # ENXIO: no reader yet
                return None

        (writer,) = wait_until(reader_or_exit, 120, "the lane to read the poison or exit", poll=0.02)
        if writer is None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        os.close(writer)
        return True


def test_poison_shard_fails_after_the_last_generation_and_the_run_ends(tmp_path):
    case = StoreCase("file", f"file://{tmp_path}/store")
    seed(case, tmp_path, 6, 3)
    poison = _Poison(tmp_path / "store" / "in" / "0004.png")  # in shard-00001
    kills, attempt, done = 0, 0, None
    for attempt in range(8):  # Argo's retries of the lane pod; the run must end well before 8
        lane = start_lane(lane_command(case, tmp_path, 0, 1, "--claim-ttl=30", f"--attempt={attempt}"))
        if poison.kill_reader(lane):
            kills += 1
            continue
        done = lane.communicate(timeout=120)
        break
    assert done is not None, f"the lane was still dying on the poison shard after {attempt + 1} attempts"
    assert lane.returncode == 0, done[1][-3000:]
    assert kills == 4  # one per allowed generation; the 5th attempt commits the shard as failed
    commit = read_commits(case)["shard-00001"]
    assert commit["status"] == "failed"
    assert all(f"g{g} lane 0 attempt {g}" in commit["reason"] for g in range(4)), commit["reason"]
    # The dead generations' staged outputs went with the failed commit: nothing is left behind.
    assert list(open_store(case.uri).list("run/queue/staging/shard-00001")) == []
    # shard-00000 was claimed alongside (the feeder claims ahead), so each kill may take its claim
    # down too: it ends committed, done or (collateral) failed, never open.
    other = read_commits(case)["shard-00000"]
    assert other["status"] in ("done", "failed")
    expected = (3, 3) if other["status"] == "done" else (0, 6)

    args = [f"--run-uri={case.uri}/run", f"--output-uri={case.uri}/out", f"--outputs-dir={tmp_path}/report"]
    assert run_step("steps.report", ReportParams, report, args) == 0
    summary = json.loads(open_store(case.uri).get_bytes("run/report/summary.json"))
    assert (summary["processed"], summary["failed"]) == expected
    assert "shard-00001" in [f["shard"] for f in summary["failed_shards"]]
    assert {"0003.png", "0004.png", "0005.png"} <= {f["key"] for f in summary["failures"]}
    markdown = open_store(case.uri).get_bytes("run/report/summary.md").decode()
    assert "shard shard-00001 failed" in markdown
