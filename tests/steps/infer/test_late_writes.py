"""Exactly-once outputs when a stalled lane's writes land late: the lane passed its lease check and
sent its PUT, then froze (SIGSTOP) with the PUT still in flight, held by the fault proxy as if in a
socket buffer. Another lane takes over (or publishes) meanwhile; then the proxy forwards the held
PUTs to the S3 emulator (moto), and only then does the frozen lane wake. Real lane processes.
"""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

from steps.common.storage import open_store
from steps.infer.claims import claims_prefix
from steps.infer.fenced import staging_prefix
from testkit.fault_proxy import FaultProxy
from tests.fixtures.stepkit import StoreCase
from tests.fixtures.waiting import wait_until
from tests.steps.infer.lane_case import lane_command, read_commits, seed, solid, start_lane

IMAGES, SHARD_SIZE = 6, 3
SHARD = "shard-00000"
SHARD_KEYS = [f"{i:04d}.png" for i in range(SHARD_SIZE)]  # the items of SHARD


def _visible(case: StoreCase) -> dict[str, bytes]:
    """The bytes of every object a reader sees: outputs, results, metrics and commits."""
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    keys = [o.key for prefix in ("out", "run/results", "run/metrics") for o in store.list(prefix)]
    keys += [o.key for o in store.list(f"run/{claims_prefix()}") if o.key.endswith("/commit.json")]
    return {key: store.get_bytes(key) for key in keys}


def _changed(before: dict[str, bytes], after: dict[str, bytes]) -> list[str]:
    """The keys whose bytes differ, appeared or vanished."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _item_output_put(path: str) -> bool:
    """A PUT of one of SHARD's per-image outputs, wherever it goes (staging or a final key)."""
    return path.endswith(tuple(f"/{k}{suffix}" for k in SHARD_KEYS for suffix in (".json", ".mask.png")))


def _frozen_mid_write(case: StoreCase, tmp_path, proxy: FaultProxy, match: Callable[[str, str], bool]):
    """Lane 0 of 2 through the proxy, SIGSTOPped once the proxy holds a PUT that `match` selects."""
    proxy.hold(0, lambda method, path: method == "PUT" and match(method, path))
    lane0 = start_lane(lane_command(case, tmp_path, 0, 2, "--claim-ttl=2", "--batch-size=1", endpoint=proxy.url))
    wait_until(lambda: proxy.held or lane0.poll() is not None, 120, "lane 0's first held PUT")
    assert lane0.poll() is None, lane0.communicate()[1][-3000:]
    lane0.send_signal(signal.SIGSTOP)
    return lane0


def _rescue(case: StoreCase, tmp_path) -> str:
    """Lane 1, straight to the emulator, runs the run to its end; its stderr."""
    rescuer = subprocess.run(
        lane_command(case, tmp_path, 1, 2, "--claim-ttl=2"), capture_output=True, text=True, timeout=300
    )
    assert rescuer.returncode == 0, rescuer.stderr[-3000:]
    return rescuer.stderr


def _land_late(proxy: FaultProxy) -> None:
    proxy.release()
    wait_until(lambda: proxy.landed == proxy.held, 60, "the held PUTs to land")


def _check_one_commit_per_shard(case: StoreCase) -> dict[str, dict]:
    commits = read_commits(case)
    assert sorted(commits) == [f"shard-{i:05d}" for i in range(IMAGES // SHARD_SIZE)]
    assert all(c["status"] == "done" for c in commits.values())
    assert sum(c["metrics"]["processed"] for c in commits.values()) == IMAGES
    return commits


def _staging_left(case: StoreCase) -> list[str]:
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    return [o.key for o in store.list(f"run/{staging_prefix(SHARD, 0).rsplit('/', 1)[0]}")]


def test_late_put_after_takeover_changes_no_visible_output(tmp_path, s3_bucket):
    case = StoreCase("s3", s3_bucket.uri, s3_bucket.endpoint)
    seed(case, tmp_path, IMAGES, SHARD_SIZE)
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    with FaultProxy(case.endpoint) as proxy:
        lane0 = _frozen_mid_write(case, tmp_path, proxy, lambda _method, path: _item_output_put(path))
        try:
            # New colours for the shard's inputs: the winner's outputs now differ from the frozen
            # lane's (as a nondeterministic model or a newer model version would), so a late write
            # that reached a visible key would show in the bytes.
            for i, key in enumerate(SHARD_KEYS):
                store.put_bytes(f"in/{key}", solid([(30, 200, 30), (30, 30, 200), (200, 30, 30)][i % 3]))
            err1 = _rescue(case, tmp_path)
            assert f"took over {SHARD} generation 0" in err1, err1[-3000:]
            winner = _visible(case)
            _land_late(proxy)  # the frozen lane's PUTs, sent within its lease, land after the commit
            assert _changed(winner, _visible(case)) == []
        finally:
            lane0.send_signal(signal.SIGCONT)
        _out, err = lane0.communicate(timeout=120)
    assert lane0.returncode == 0, err[-3000:]
    assert f"{SHARD} generation 0: commit refused" in err, err[-3000:]
    assert _changed(winner, _visible(case)) == [], err[-3000:]
    commits = _check_one_commit_per_shard(case)
    assert (commits[SHARD]["generation"], commits[SHARD]["lane"]) == (1, 1)
    # The late bodies were the frozen lane's own, different from what readers see: the test can tell.
    late = {path.rsplit("/", 1)[-1]: body for path, body in proxy.held_requests}
    assert late and all(winner[f"out/{name}"] != body for name, body in late.items())
    assert _staging_left(case) == []  # the woken lane deleted its staging, late objects included


def test_lane_frozen_mid_publish_wakes_and_changes_nothing(tmp_path, s3_bucket):
    case = StoreCase("s3", s3_bucket.uri, s3_bucket.endpoint)
    seed(case, tmp_path, IMAGES, SHARD_SIZE)
    with FaultProxy(case.endpoint) as proxy:
        # Final keys are only written by publishing, after the commit: lane 0 stops mid-publish.
        lane0 = _frozen_mid_write(case, tmp_path, proxy, lambda _method, path: "/out/" in path)
        try:
            assert read_commits(case)[SHARD]["lane"] == 0  # committed, not yet published
            err1 = _rescue(case, tmp_path)  # finishes the run and publishes the committed shard
            published = _visible(case)
            _land_late(proxy)  # the frozen lane's publish PUTs: the same bytes, late
            assert _changed(published, _visible(case)) == []
        finally:
            lane0.send_signal(signal.SIGCONT)
        _out, err = lane0.communicate(timeout=120)
    assert lane0.returncode == 0, err[-3000:]
    assert _changed(published, _visible(case)) == [], err[-3000:] + err1[-3000:]
    commits = _check_one_commit_per_shard(case)
    assert (commits[SHARD]["generation"], commits[SHARD]["lane"]) == (0, 0)
    late = {path.split("/out/", 1)[-1]: body for path, body in proxy.held_requests}
    assert late and all(published[f"out/{name}"] == body for name, body in late.items())
    outputs = {k for k in published if k.startswith("out/") and k.endswith(".json")}
    assert outputs == {f"out/{i:04d}.png.json" for i in range(IMAGES)}
    assert _staging_left(case) == []
