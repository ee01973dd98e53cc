"""Lane workers on one run's work queue: races, a SIGKILLed worker, a retried lane, an S3 server that
ignores conditional writes. Real `python -m steps.infer` processes, on the file store and on the
S3 emulator.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from steps.infer.claims import WorkQueue, claims_prefix
from steps.infer.lane import unresolved
from testkit.fault_proxy import FaultProxy
from tests.fixtures.stepkit import StoreCase
from tests.fixtures.waiting import wait_until
from tests.steps.infer.lane_case import Gate, claim_log, lane_command, seed, start_lane

REPO = REPO_ROOT


def _check_complete(case: StoreCase, images: int, shards: int) -> dict[str, list[dict]]:
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    outputs = [o.key for o in store.list("out") if o.key.endswith(".json")]
    assert sorted(outputs) == [f"out/{i:04d}.png.json" for i in range(images)]
    results = Counter()
    for info in store.list("run/results"):
        for line in store.get_bytes(info.key).splitlines():
            row = json.loads(line)
            assert row["status"] in ("ok", "resumed"), row
            results[row["key"]] += 1
    assert results == Counter({f"{i:04d}.png": 1 for i in range(images)})  # one result line per item
    metrics = [json.loads(store.get_bytes(o.key)) for o in store.list("run/metrics")]
    assert len(metrics) == shards and sum(m["processed"] for m in metrics) == images
    log = claim_log(case)
    assert len(log) == shards
    for shard, claims in log.items():
        assert claims[-1]["done"], (shard, claims)
        assert [c["generation"] for c in claims] == list(range(len(claims)))
        # A second claim of a shard only ever follows a takeover (stale, failed or a lane's own resume).
        assert all(c["reason"] in ("stale", "failed", "resume") for c in claims[1:]), (shard, claims)
    return log


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_eight_racing_lanes_process_every_shard_once(kind, tmp_path, request):
    if kind == "file":
        case = StoreCase("file", f"file://{tmp_path}/store")
    else:
        bucket = request.getfixturevalue("s3_bucket")
        case = StoreCase("s3", bucket.uri, bucket.endpoint)
    images, shard_size, lanes = 96, 3, 8
    seed(case, tmp_path, images, shard_size)
    if kind == "file":
        procs = _staggered_lanes(case, tmp_path, lanes)
    else:
        # On S3 every request costs milliseconds, so lanes that start seconds apart still share the
        # work. (Freezing lanes as below stalls moto's server for the others, so it is file-only.)
        procs = [start_lane(lane_command(case, tmp_path, i, lanes, "--claim-ttl=600")) for i in range(lanes)]
    for proc in procs:
        _out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    log = _check_complete(case, images, images // shard_size)
    assert all(len(claims) == 1 for claims in log.values()), "no takeover was due, so no shard ran twice"
    by_lane = Counter(claims[0]["lane"] for claims in log.values())
    assert len(by_lane) >= 2, by_lane  # the work really was shared


def _staggered_lanes(case: StoreCase, tmp_path: Path, lanes: int) -> list[subprocess.Popen]:
    """Left alone on two cores, lanes start seconds apart, and on the file store the first one can
    finish all the tiny shards before the next has imported onnxruntime: no race. So lane 0 is frozen
    (SIGSTOP) as soon as it holds a claim, the other lanes start together, and lane 0 is thawed once
    one of them holds a claim too: at least two lanes have work, and all of them race for the rest.
    The TTL is long, so the frozen lane's claims never fall due.
    """
    first = start_lane(lane_command(case, tmp_path, 0, lanes, "--claim-ttl=600"))
    rest: list[subprocess.Popen] = []
    try:
        wait_until(lambda: _holds_claim(case, 0, first), 120, "lane 0 to claim a shard", poll=0.005)
        first.send_signal(signal.SIGSTOP)
        rest = [start_lane(lane_command(case, tmp_path, i, lanes, "--claim-ttl=600")) for i in range(1, lanes)]
        wait_until(
            lambda: any(_holds_claim(case, i, proc) for i, proc in enumerate(rest, 1)),
            120,
            "a second lane to claim",
            poll=0.05,
        )
    finally:
        first.send_signal(signal.SIGCONT)
    return [first, *rest]


def _holds_claim(case: StoreCase, lane: int, proc: subprocess.Popen) -> bool:
    assert proc.poll() is None, f"lane {lane} exited early: {proc.communicate()[1][-3000:]}"
    return any(c["lane"] == lane for claims in claim_log(case).values() for c in claims)


def _staged(store, keys: range) -> int:
    """How many of `keys`' results a lane has staged (per-image outputs wait there for the commit)."""
    names = {f"{i:04d}.png.json" for i in keys}
    return sum(1 for o in store.list("run/queue/staging") if o.key.rsplit("/", 1)[-1] in names)


def _kill_lane_0_at(
    case: StoreCase, tmp_path: Path, store, *, ttl: str, image: int, outputs: tuple[range, int], what: str
) -> set[str]:
    """Starts lane 0 of 2 alone and SIGKILLs it while it is blocked reading `image` (a FIFO), once
    `outputs` (keys, at least how many) are written. The shards whose last claim it left unfinished.
    """
    keys, written = outputs
    gate = Gate(tmp_path / "store", f"in/{image:04d}.png")
    victim = start_lane(
        lane_command(case, tmp_path, 0, 2, f"--claim-ttl={ttl}", "--batch-size=1", "--upload-workers=1")
    )
    wait_until(
        lambda: gate.reader_blocked() or victim.poll() is not None, 120, f"lane 0 to reach image {image}", poll=0.05
    )
    assert victim.poll() is None, victim.communicate()[1][-3000:]
    wait_until(lambda: _staged(store, keys) >= written, 120, what, poll=0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    gate.release()
    return {s for s, claims in claim_log(case).items() if not claims[-1]["done"]}


def test_sigkill_mid_shard_takeover_and_retried_lane_resumes(tmp_path):
    case = StoreCase("file", f"file://{tmp_path}/store")
    images, shard_size = 60, 20
    seed(case, tmp_path, images, shard_size)
    store = open_store(case.uri)

    # Lane 0 of 2 starts alone; it is killed mid-shard-00000: blocked reading image 10 (a FIFO), with
    # at least 3 of that shard's outputs written.
    killed = _kill_lane_0_at(
        case,
        tmp_path,
        store,
        ttl="1.5",
        image=10,
        outputs=(range(20), 3),
        what="lane 0 to write some outputs of shard-00000",
    )
    assert "shard-00000" in killed
    written_before = {o.key for o in store.list("out") if o.key.endswith(".json")}

    # Lane 1 runs its stride, steals, then takes the dead lane's claims over after the TTL.
    rescuer = subprocess.run(
        lane_command(case, tmp_path, 1, 2, "--claim-ttl=1.5"), cwd=REPO, capture_output=True, text=True
    )
    assert rescuer.returncode == 0, rescuer.stderr[-3000:]
    assert "took over shard-00000 generation 0" in rescuer.stderr
    log = _check_complete(case, images, images // shard_size)
    for shard in killed:
        assert [c["reason"] for c in log[shard]] == ["new", "stale"] and log[shard][1]["lane"] == 1
    metrics = json.loads(store.get_bytes("run/metrics/shard-00000.json"))
    # The dead generation's outputs stayed in its staging: none was final, so none is reused.
    assert written_before & {f"out/{i:04d}.png.json" for i in range(20)} == set()
    assert (metrics["resumed"], metrics["processed"], metrics["generation"]) == (0, 20, 1)
    assert not list(store.list("run/queue/staging")), "every generation's staging is cleaned up"


def test_retried_lane_resumes_its_own_claims_first(tmp_path):
    case = StoreCase("file", f"file://{tmp_path}/store")
    images, shard_size = 60, 10
    seed(case, tmp_path, images, shard_size)
    store = open_store(case.uri)
    # Killed mid-shard-00000 (blocked on image 5, a FIFO), so it leaves at least that claim unfinished.
    unfinished = _kill_lane_0_at(
        case, tmp_path, store, ttl="600", image=5, outputs=(range(5), 1), what="lane 0 to start writing"
    )
    assert "shard-00000" in unfinished

    # Argo retries the lane pod (attempt 1): with a TTL of 10 minutes nobody else could take the
    # claims over yet, so only the lane's own resume can finish them.
    retry = subprocess.run(
        lane_command(case, tmp_path, 0, 2, "--claim-ttl=600", "--attempt=1"), cwd=REPO, capture_output=True, text=True
    )
    lane1 = subprocess.run(
        lane_command(case, tmp_path, 1, 2, "--claim-ttl=600"), cwd=REPO, capture_output=True, text=True
    )
    assert retry.returncode == 0 and lane1.returncode == 0, (retry.stderr[-2000:], lane1.stderr[-2000:])
    log = _check_complete(case, images, images // shard_size)
    retry_claims = sorted(
        (c for claims in log.values() for c in claims if c["attempt"] == 1), key=lambda c: c["claimed_at"]
    )
    first_ones = retry_claims[: len(unfinished)]
    assert {c["shard"] for c in first_ones} == unfinished and all(c["reason"] == "resume" for c in first_ones)


def test_sigterm_mid_shard_hands_claims_back_for_an_immediate_takeover(tmp_path):
    case = StoreCase("file", f"file://{tmp_path}/store")
    images, shard_size = 60, 10
    seed(case, tmp_path, images, shard_size)
    store = open_store(case.uri)
    gate = Gate(tmp_path / "store", "in/0005.png")
    # A TTL of 10 minutes: within this test only the handed-back claims can be taken over.
    victim = start_lane(lane_command(case, tmp_path, 0, 2, "--claim-ttl=600", "--batch-size=1", "--upload-workers=1"))
    wait_until(lambda: gate.reader_blocked() or victim.poll() is not None, 120, "lane 0 to reach image 5", poll=0.05)
    assert victim.poll() is None, victim.communicate()[1][-3000:]
    wait_until(lambda: _staged(store, range(5)) >= 1, 120, "lane 0 to start writing", poll=0.05)
    victim.send_signal(signal.SIGTERM)
    _out, err = victim.communicate(timeout=60)  # exits while a worker is still blocked on the FIFO
    gate.release()
    assert victim.returncode == 128 + signal.SIGTERM, err[-3000:]
    assert "SIGTERM: handed back its claims (shard-00000 generation 0" in err
    stopped = claim_log(case)
    handed = {s for s, claims in stopped.items() if not claims[-1]["done"]}
    assert "shard-00000" in handed and all(stopped[s][-1]["failed"] for s in handed), stopped
    # Its other prefetch worker may have finished later shards meanwhile: those are committed.
    published = {int(o.key[4:8]) // shard_size for o in store.list("out") if o.key.endswith(".json")}
    assert not {f"shard-{k:05d}" for k in published} & handed, "nothing handed back is published"

    # Lane 1 alone, the TTL still 10 minutes: it can only take the handed-back shards over because
    # they are marked failed (lane 0's own retry would also resume them, its pid being gone).
    lane1 = subprocess.run(
        lane_command(case, tmp_path, 1, 2, "--claim-ttl=600"), cwd=REPO, capture_output=True, text=True
    )
    assert lane1.returncode == 0, lane1.stderr[-3000:]
    log = _check_complete(case, images, images // shard_size)
    for shard in handed:
        assert [(c["reason"], c["lane"]) for c in log[shard]] == [("new", 0), ("failed", 1)], log[shard]
    assert not list(store.list("run/queue/staging")), "the stopped generation's staging is cleaned up"


def test_server_ignoring_if_none_match_is_refused(s3_server, tmp_path):
    bucket = s3_server.create_bucket()
    case = StoreCase("s3", f"s3://{bucket}", s3_server.endpoint)
    seed(case, tmp_path, 6, 3)
    with FaultProxy(s3_server.endpoint) as proxy:
        proxy.strip_headers("If-None-Match")
        done = subprocess.run(
            lane_command(case, tmp_path, 0, 1, endpoint=proxy.url),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 2
    message = done.stderr.strip().splitlines()[-1]
    assert message.startswith("steps.infer: error: ") and "ignores conditional writes" in message, done.stderr
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    assert not list(store.list("out")) and not list(store.list(f"run/{claims_prefix()}"))
    assert not list(store.list("run/queue")), "the probe cleans up after itself"


def test_lane_flags_are_checked(tmp_path):
    base = [sys.executable, "-m", "steps.infer", "--model-uri=file:///m.onnx", "--output-uri=file:///o"]
    for extra, wanted in (
        (["--lanes=2", "--lane=2", "--run-uri=file:///r"], "--lane=2 must be below --lanes=2"),
        (["--lanes=2"], "--lanes needs --run-uri"),
        ([], "missing --shard-uri"),
    ):
        done = subprocess.run([*base, *extra], cwd=REPO, capture_output=True, text=True, env=os.environ)
        assert done.returncode == 2 and wanted in done.stderr, done.stderr


def test_failed_shard_another_lane_finished_needs_no_retry(tmp_path):
    """A lane that marked a shard failed (transient failures over the ratio) exits 1 only while the
    shard is still open: once another lane's takeover committed it, a retry of the pod would do nothing.
    """
    store = open_store(f"file://{tmp_path}/run")
    ours = WorkQueue(store, lane=0, lanes=2, attempt=0, ttl=30)
    theirs = WorkQueue(store, lane=1, lanes=2, attempt=0, ttl=30)
    over = [("shard-00000", 1), ("shard-00001", 1), ("shard-00002", 2)]
    for shard, _ in over:
        claim = ours.try_claim(shard)
        assert claim is not None
        if shard == "shard-00002":
            assert ours.commit(claim, {"failed": 3})
        else:
            ours.mark_failed(claim, {"failed": 3})
    assert unresolved(ours, over) == over  # nobody else finished anything yet
    rescue = theirs.try_claim("shard-00000", 1, "failed")
    assert rescue is not None
    assert unresolved(ours, over) == over  # claimed, not committed
    assert theirs.commit(rescue, {"failed": 0})
    again = theirs.try_claim("shard-00001", 1, "failed")
    assert again is not None
    theirs.mark_failed(again, {"failed": 3})  # the takeover failed too: still open
    assert unresolved(ours, over) == [("shard-00001", 1), ("shard-00002", 2)]
