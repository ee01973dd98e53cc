"""Chaos on the work queue: 4 lanes on the S3 emulator, each behind its own proxy that drops the responses of
some successful PUTs, while the test SIGKILLs lanes (and restarts them, as Argo retries a pod) and
freezes others (SIGSTOP, then SIGCONT) at random, seeded. Whatever happens, every shard has one
commit and every image is processed once; the figures are printed.
"""

from __future__ import annotations

import contextlib
import json
import random
import signal
import subprocess
from pathlib import Path

from steps.common.storage import open_store
from steps.infer.claims import claims_prefix
from testkit.fault_proxy import FaultProxy
from tests.fixtures.stepkit import StoreCase
from tests.fixtures.waiting import wait_until
from tests.steps.infer.lane_case import lane_command, read_commits, seed

LANES, IMAGES, SHARD_SIZE, EVENTS = 4, 160, 2, 50
#: A lane on this generation of a shard (of the 4 allowed) is spared: the test disturbing it again
#: would make the shard poison (every generation died), which is right, but the poison test's subject.
LATE_GENERATION = 2


class _Lanes:
    """The lane processes, restarted with the next attempt number when killed or failed."""

    def __init__(self, case: StoreCase, tmp_path: Path, proxies: list[FaultProxy]) -> None:
        self.case, self.tmp_path, self.proxies = case, tmp_path, proxies
        self.attempts = dict.fromkeys(range(LANES), 0)
        self.procs: dict[int, subprocess.Popen] = {}
        self.logs: list[Path] = []
        for lane in range(LANES):
            self.start(lane)

    def start(self, lane: int) -> None:
        from pipelines.tools import REPO_ROOT

        log = self.tmp_path / f"lane-{lane}-a{self.attempts[lane]}.log"
        self.logs.append(log)
        command = lane_command(
            self.case,
            self.tmp_path,
            lane,
            LANES,
            "--claim-ttl=3",
            f"--attempt={self.attempts[lane]}",
            endpoint=self.proxies[lane].url,
        )
        with open(log, "w") as err:
            self.procs[lane] = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=err)

    def restart(self, lane: int) -> None:
        self.attempts[lane] += 1
        self.start(lane)

    def stderr(self) -> str:
        return "".join(log.read_text() for log in self.logs)


def _changes(store) -> int:
    """How far the queue has moved: claims, marks and commits made so far."""
    return sum(1 for _ in store.list("run/queue/claims"))


def _wait_change(store, seen: int, lanes: _Lanes, frozen: int | None = None) -> int:
    """Until the queue moves, or no lane but the frozen one is left to move it."""

    def moved() -> tuple[int] | None:
        now = _changes(store)
        if now != seen or all(p.poll() is not None for lane, p in lanes.procs.items() if lane != frozen):
            return (now,)
        return None

    (now,) = wait_until(moved, 60, "the queue to move", poll=0.05)
    return now


def _holds_late_generation(store, lane: int) -> bool:
    """Whether `lane` holds an uncommitted shard's claim of LATE_GENERATION or later: one LIST, and a
    GET for each such claim (few), so the lane is stopped only briefly while this is read.
    """
    latest: dict[str, str] = {}  # shard -> the key of its latest claim
    committed = set()
    for info in store.list(f"run/{claims_prefix()}"):
        shard, name = info.key.rsplit("/", 2)[-2:]
        if name == "commit.json":
            committed.add(shard)
        elif name.count(".") == 1 and name > latest.get(shard, "/").rsplit("/", 1)[1]:
            latest[shard] = info.key
    for shard, key in latest.items():
        generation = int(key.rsplit("/g", 1)[1].split(".")[0])
        late = shard not in committed and generation >= LATE_GENERATION
        if late and json.loads(store.get_bytes(key))["lane"] == lane:
            return True
    return False


def _assert_every_image_once(store, commits: dict[str, dict]) -> None:
    """One done commit per shard, every image in exactly one, published and written once."""
    assert sorted(commits) == [f"shard-{i:05d}" for i in range(IMAGES // SHARD_SIZE)]  # one commit each
    assert all(c["status"] == "done" for c in commits.values()), [c for c in commits.values() if c["status"] != "done"]
    rows = [r for c in commits.values() for r in c["results"]]
    assert sorted(r["key"] for r in rows) == [f"{i:04d}.png" for i in range(IMAGES)]
    assert all(r["status"] in ("ok", "resumed") for r in rows), [r for r in rows if r["status"] == "failed"]
    published = sorted(
        json.loads(line)["key"] for o in store.list("run/results") for line in store.get_bytes(o.key).splitlines()
    )
    assert published == [f"{i:04d}.png" for i in range(IMAGES)]
    outputs = sorted(o.key for o in store.list("out") if o.key.endswith(".json"))
    assert outputs == [f"out/{i:04d}.png.json" for i in range(IMAGES)]


def test_chaos_kills_stalls_and_lost_responses_lose_nothing(s3_bucket, tmp_path):
    case = StoreCase("s3", s3_bucket.uri, s3_bucket.endpoint)
    seed(case, tmp_path, IMAGES, SHARD_SIZE)
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    rng = random.Random(18)
    kills = stalls = spared = 0
    with contextlib.ExitStack() as stack:
        # One proxy per lane, so that once a lane is stopped the test can wait until none of its
        # requests is still on its way (a claim PUT landing after the look would be missed).
        proxies = [stack.enter_context(FaultProxy(case.endpoint)) for _ in range(LANES)]
        for proxy in proxies:
            proxy.fail_every(9, "reset-after", methods=("PUT",))  # applied, but the response is lost
        lanes = _Lanes(case, tmp_path, proxies)
        seen = _changes(store)
        for _ in range(EVENTS):
            seen = _wait_change(store, seen, lanes)
            live = [lane for lane, proc in lanes.procs.items() if proc.poll() is None]
            done = sum(1 for o in store.list("run/queue/claims") if o.key.endswith("/commit.json"))
            if not live or done == IMAGES // SHARD_SIZE:
                break
            lane = rng.choice(live)
            lanes.procs[lane].send_signal(signal.SIGSTOP)  # claims nothing while the test looks
            wait_until(proxies[lane].idle, 30, f"lane {lane}'s requests in flight to land", poll=0.01)
            if _holds_late_generation(store, lane):
                lanes.procs[lane].send_signal(signal.SIGCONT)
                spared += 1
                continue
            if rng.random() < 0.5:
                lanes.procs[lane].send_signal(signal.SIGKILL)
                lanes.procs[lane].wait(timeout=30)
                lanes.restart(lane)
                kills += 1
            else:  # frozen until the queue moves on twice: often past the TTL, so a takeover
                seen = _wait_change(store, _wait_change(store, seen, lanes, lane), lanes, lane)
                lanes.procs[lane].send_signal(signal.SIGCONT)
                stalls += 1
        for _round in range(3 * LANES):  # lanes that failed (exit 1) are retried, as Argo would
            codes = {lane: proc.wait(timeout=300) for lane, proc in lanes.procs.items()}
            failed = [lane for lane, code in codes.items() if code != 0]
            if not failed:
                break
            for lane in failed:
                lanes.restart(lane)
        injected = sum(proxy.injected for proxy in proxies)
    err = lanes.stderr()
    assert all(proc.returncode == 0 for proc in lanes.procs.values()), err[-4000:]

    commits = read_commits(case)
    generations = {shard: c.get("generation", 0) for shard, c in commits.items()}
    refused = err.count("commit refused")
    print(
        f"chaos: {kills} kills, {stalls} stalls, {sum(generations.values())} takeovers, {refused} refused commits, "
        f"{err.count('lost its claim')} lost claims, {injected} PUT responses dropped, {spared} lanes spared"
    )
    _assert_every_image_once(store, commits)
    assert kills + stalls > 0 and injected > 0
