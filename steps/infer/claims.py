"""The run's work queue in object storage: claims with fenced heartbeats, and one commit per shard.

Layout under the run (`<run>/queue/claims/<shard>/`):
  g0000.json        the first claim: lane, attempt, host, pid, token and times. Its owner rewrites it
                    every heartbeat by compare-and-swap on its ETag, so its Last-Modified says the
                    owner is alive, and a beat that is refused tells the owner it lost the claim.
  g0000.failed.json the owner finished with transient failures over --max-failure-ratio, or was
                    stopped (SIGTERM: a deleted or evicted pod): another lane (or this lane's
                    retry) may take it over at once.
  g0001.json        a takeover: made when g0000 went stale (no heartbeat for --claim-ttl), was
                    marked failed, or its lane's retried pod proved the old attempt gone. The taker
                    first overwrites g0000 by compare-and-swap on the ETag it judged stale, so a
                    stalled owner's next beat is refused.
  commit.json       the shard's one outcome, made by create-if-absent: the generation whose outputs
                    are the shard's (its metrics, its result records, the output keys), or "failed"
                    with the reason once the last allowed generation died. The first commit wins;
                    a late writer's commit is refused and it deletes what it staged.

Only one worker can create a given generation or the commit (S3 `If-None-Match: *`, a hard link on
files). docs/exactly-once.md describes the protocol, its assumptions and each failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.storage import NotFound, ObjectInfo, Store

_KEY = re.compile(r"^(?P<shard>[^/]+)/(?:g(?P<gen>\d{4,})(?P<mark>\.failed)?|(?P<commit>commit))\.json$")
COMMIT = "commit.json"


def claims_prefix() -> str:
    return f"{runlayout.QUEUE_DIR}/claims"


def claim_key(shard: str, generation: int) -> str:
    return f"{claims_prefix()}/{shard}/g{generation:04d}.json"


def mark_key(shard: str, generation: int, mark: str) -> str:
    return f"{claims_prefix()}/{shard}/g{generation:04d}.{mark}.json"


def commit_key(shard: str) -> str:
    return f"{claims_prefix()}/{shard}/{COMMIT}"


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


@dataclass
class Claim:
    """One generation this process holds. `renewed` (monotonic) is when the storage last confirmed
    it, by its create or a heartbeat; `lost` is set once a heartbeat was refused.
    """

    shard: str
    generation: int
    body: dict
    etag: str
    renewed: float = field(default_factory=time.monotonic)
    lost: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    @property
    def key(self) -> str:
        return claim_key(self.shard, self.generation)

    def held(self, lease_s: float) -> bool:
        return not self.lost.is_set() and time.monotonic() - self.renewed < lease_s

    def wait_held(self, lease_s: float, timeout: float) -> bool:
        """True while the lease is fresh; after a stall (SIGSTOP, a GC pause) it waits for the next
        heartbeat to say whether the claim is still ours. False when lost or never confirmed.
        """
        deadline = time.monotonic() + timeout
        with self.changed:
            while not self.held(lease_s) and not self.lost.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.changed.wait(min(left, 0.05))
        return self.held(lease_s)


@dataclass
class ShardState:
    """What one listing says about a shard: its claim generations, their marks and its commit."""

    claims: dict[int, ObjectInfo] = field(default_factory=dict)
    failed: set[int] = field(default_factory=set)
    committed: bool = False

    @property
    def latest(self) -> int:
        return max(self.claims) if self.claims else -1

    @property
    def finished(self) -> bool:
        return self.committed

    @property
    def failed_latest(self) -> bool:
        return self.latest in self.failed and not self.committed

    def heartbeat_age(self, now: datetime) -> float:
        info = self.claims.get(self.latest)
        return (now - info.last_modified).total_seconds() if info else 0.0


class WorkQueue:
    """Claims of one lane process on one run. Thread-safe: heartbeats rewrite claims while the feeder
    makes new ones. `beats` is a store on the same run with short timeouts and few attempts, so a
    beat ends well within the TTL whatever the uploads do.
    """

    def __init__(
        self, store: Store, *, lane: int, lanes: int, attempt: int, ttl: float, beats: Store | None = None
    ) -> None:
        self.store = store
        self.beats = beats or store
        self.lane = lane
        self.lanes = lanes
        self.attempt = attempt
        self.ttl = ttl
        #: A write (an output, the commit) needs a beat confirmed this recently: well inside the TTL
        #: after which other lanes may take the claim over.
        self.lease_s = ttl / 2
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._active: dict[str, Claim] = {}
        self._lock = threading.Lock()
        #: Set by `hand_back`: no claim is made after it, and the claims being made are waited for.
        self._closed = False
        self._creating = 0
        self._settled = threading.Condition(self._lock)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(8, thread_name_prefix="heartbeat")
        self._inflight: dict[str, Future] = {}
        self.heartbeat_errors = 0
        self.lost: list[tuple[str, int]] = []
        #: (shard, generation, reason) this process created: its own log, for tests and the exit code.
        self.made: list[tuple[str, int, str]] = []

    # -- claims ---------------------------------------------------------------------------------------
    def _body(self, shard: str, generation: int, reason: str) -> dict:
        now = datetime.now(UTC).isoformat()
        return {
            "shard": shard,
            "generation": generation,
            "reason": reason,  # new | stale | failed | resume
            "lane": self.lane,
            "lanes": self.lanes,
            "attempt": self.attempt,
            "host": self.host,
            "pid": os.getpid(),
            "pid_namespace": _pid_namespace(),
            "token": self.token,
            "claimed_at": now,
            "heartbeat_at": now,
            "beats": 0,
        }

    def try_claim(
        self, shard: str, generation: int = 0, reason: str = "new", *, supersede: ObjectInfo | None = None
    ) -> Claim | None:
        """Create generation `generation` of `shard`'s claim; None when another worker has it. A
        takeover passes the previous generation as it saw it (`supersede`): that claim is fenced
        first, and when its ETag moved since (its owner beat: alive) there is no takeover.
        """
        with self._lock:
            if self._closed:
                return None
            self._creating += 1
        try:
            return self._make_claim(shard, generation, reason, supersede)
        finally:
            with self._settled:
                self._creating -= 1
                self._settled.notify_all()

    def _make_claim(self, shard: str, generation: int, reason: str, supersede: ObjectInfo | None) -> Claim | None:
        if supersede is not None:
            # The old body stays readable (the claim log shows who held each generation).
            fence = self.read(shard, generation - 1) | {
                "superseded_by": {"generation": generation, "lane": self.lane, "token": self.token, "reason": reason}
            }
            if self.store.replace_if(supersede.key, json.dumps(fence).encode(), etag=supersede.etag) is None:
                return None
        body = self._body(shard, generation, reason)
        started = time.monotonic()
        if not self.store.create_bytes(
            claim_key(shard, generation), json.dumps(body).encode(), content_type="application/json"
        ):
            return None
        info = self.store.head(claim_key(shard, generation))
        claim = Claim(shard, generation, body, info.etag if info is not None else "", renewed=started)
        with self._lock:
            self.made.append((shard, generation, reason))
            if not self._closed:
                self._active[shard] = claim
                return claim
        self._mark_handed_back(claim, "made while the lane was stopping")  # never used: handed back too
        return None

    def commit(self, claim: Claim, record: dict) -> bool:
        """Create the shard's commit for `claim`'s generation: True when it is the shard's outcome. A
        claim whose lease cannot be confirmed (lost, or a stall outlived it) never commits.
        """
        held = claim.wait_held(self.lease_s, timeout=3 * self.ttl)
        self.release(claim)
        if not held:
            return False
        doc = {
            "status": "done",
            "shard": claim.shard,
            "generation": claim.generation,
            "lane": self.lane,
            "attempt": self.attempt,
            "token": self.token,
            "committed_at": datetime.now(UTC).isoformat(),
            **record,
        }
        return self.store.create_bytes(commit_key(claim.shard), json.dumps(doc).encode(), "application/json")

    def mark_failed(self, claim: Claim, counts: dict) -> None:
        """Transient failures over the ratio: open the shard to a takeover at once (no commit)."""
        self.release(claim)
        record = {"lane": self.lane, "attempt": self.attempt, "token": self.token, **counts}
        self.store.create_bytes(
            mark_key(claim.shard, claim.generation, "failed"), json.dumps(record).encode(), "application/json"
        )

    def hand_back(self, reason: str, *, wait_s: float = 10.0) -> list[Claim]:
        """Give up every claim this process holds (its pod is being stopped): no claim is made any
        more, the ones being made are waited for (up to `wait_s`), and each held claim is marked lost,
        so nothing here commits it, and failed, so another lane (or this lane's retry) takes it over
        at once instead of after the TTL. A commit already under way may still land first; then it
        is the shard's outcome, as any first commit is.
        """
        with self._settled:
            self._closed = True
            self._settled.wait_for(lambda: self._creating == 0, timeout=wait_s)
            held = list(self._active.values())
            self._active.clear()
        for claim in held:
            with claim.changed:
                claim.lost.set()
                claim.changed.notify_all()
        for claim in held:
            self._mark_handed_back(claim, reason)
        return held

    def _mark_handed_back(self, claim: Claim, reason: str) -> None:
        record = {"lane": self.lane, "attempt": self.attempt, "token": self.token, "reason": reason}
        with contextlib.suppress(Exception):  # best effort: an unmarked claim still falls due at the TTL
            self.store.create_bytes(
                mark_key(claim.shard, claim.generation, "failed"), json.dumps(record).encode(), "application/json"
            )

    def fail_shard(self, shard: str, state: ShardState, items: int) -> bool:
        """Commit `shard` as failed: its last allowed generation died too. The reason names every
        generation's lane and attempt, so the report can say where it died.
        """
        generations = [self.read(shard, g) | {"generation": g} for g in sorted(state.claims)]
        died = ", ".join(f"g{g['generation']} lane {g.get('lane')} attempt {g.get('attempt')}" for g in generations)
        doc = {
            "status": "failed",
            "shard": shard,
            "items": items,
            "reason": f"every allowed generation died or failed ({died})",
            "generations": [
                {k: g.get(k) for k in ("generation", "lane", "attempt", "host", "reason")} for g in generations
            ],
            "lane": self.lane,
            "token": self.token,
            "committed_at": datetime.now(UTC).isoformat(),
        }
        return self.store.create_bytes(commit_key(shard), json.dumps(doc).encode(), "application/json")

    def active(self, shard: str) -> Claim | None:
        with self._lock:
            return self._active.get(shard)

    def release(self, claim: Claim) -> None:
        """Stop heartbeating a claim (finished, lost, or its lane is shutting down)."""
        with self._lock:
            if self._active.get(claim.shard) is claim:
                del self._active[claim.shard]

    def read(self, shard: str, generation: int) -> dict:
        try:
            value = json.loads(self.store.get_bytes(claim_key(shard, generation)))
        except (ValueError, NotFound):
            return {}
        return value if isinstance(value, dict) else {}

    def read_commit(self, shard: str) -> dict | None:
        try:
            value = json.loads(self.store.get_bytes(commit_key(shard)))
        except NotFound:
            return None
        return value if isinstance(value, dict) else None

    def scan(self, shards: list[str] | None = None) -> dict[str, ShardState]:
        """Every shard that has a claim, from one listing of the claims prefix; or only `shards`, one
        small listing each (cheaper than the whole queue once few shards are left).
        """
        states: dict[str, ShardState] = {}
        cut = len(claims_prefix()) + 1
        listings = (
            [self.store.list(claims_prefix())]
            if shards is None
            else [self.store.list(f"{claims_prefix()}/{shard}") for shard in shards]
        )
        for info in (info for listing in listings for info in listing):
            match = _KEY.match(info.key[cut:])
            if not match:
                continue
            state = states.setdefault(match["shard"], ShardState())
            if match["commit"]:
                state.committed = True
            elif match["mark"]:
                state.failed.add(int(match["gen"]))
            else:
                state.claims[int(match["gen"])] = info
        return states

    # -- heartbeats -----------------------------------------------------------------------------------
    def start_heartbeats(self) -> None:
        self._thread = threading.Thread(target=self._beat_loop, name="heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeats(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _beat_loop(self) -> None:
        # Each claim beats on its own pool thread, and a claim whose beat is still in flight is
        # skipped: one slow request delays neither the other claims nor the next round.
        interval = max(self.ttl / 4, 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                active = list(self._active.values())
            for claim in active:
                running = self._inflight.get(claim.shard)
                if running is None or running.done():
                    self._inflight[claim.shard] = self._pool.submit(self._beat, claim)

    def _beat(self, claim: Claim) -> None:
        started = time.monotonic()
        body = {**claim.body, "beats": claim.body["beats"] + 1, "heartbeat_at": datetime.now(UTC).isoformat()}
        try:
            etag = self.beats.replace_if(claim.key, json.dumps(body).encode(), etag=claim.etag)
        except Exception:
            self.heartbeat_errors += 1  # the lease lapses if this goes on: writes wait, then fail
            return
        with claim.changed:
            if etag is None:
                claim.lost.set()
            else:
                claim.body, claim.etag, claim.renewed = body, etag, started
            claim.changed.notify_all()
        if etag is None:
            self.release(claim)
            self.lost.append((claim.shard, claim.generation))
            # One write per line: beats of several claims may report at once.
            sys.stderr.write(
                f"steps.infer: lane {self.lane}: lost its claim of {claim.shard} generation {claim.generation} "
                "(taken over): stops working on it\n"
            )
            sys.stderr.flush()


def proven_gone(body: dict, host: str) -> bool:
    """An earlier attempt on this very host and pid namespace whose process no longer exists is gone
    for sure (the local runner; a pod restarted in place). Anything else must wait for the TTL.
    """
    pid = body.get("pid")
    if body.get("host") != host or body.get("pid_namespace") != _pid_namespace() or not isinstance(pid, int):
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(") ")[-1].startswith("Z")  # a zombie has exited
    return False
