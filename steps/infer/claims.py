"""The run's work queue in object storage: one claim per shard and generation, made by atomic create.

Layout under the run (`<run>/queue/claims/<shard>/`):
  g0000.json        the first claim: lane, attempt, host, pid, token and times. Its owner rewrites it
                    every heartbeat, so its Last-Modified says the owner is alive.
  g0000.done.json   the owner finished the shard (its counts), written after the shard's results.
  g0000.failed.json the owner finished with transient failures over --max-failure-ratio: another
                    lane (or this lane's retry) may take it over at once.
  g0001.json        a takeover: made when g0000 went stale (no heartbeat for --claim-ttl), was
                    marked failed, or when the retried pod of g0000's lane resumes its own claim.

Only one worker can create a given generation (S3 `If-None-Match: *`, a hard link on files), so
every shard has one owner at a time; a second owner only ever follows a takeover, and the objects
above are the claim log that shows it. One listing of `queue/claims/` gives the state of every
shard, with heartbeat ages from Last-Modified compared against the storage's own clock.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.storage import ObjectInfo, Store

_KEY = re.compile(r"^(?P<shard>[^/]+)/g(?P<gen>\d{4,})(?P<mark>\.done|\.failed)?\.json$")


def claims_prefix() -> str:
    return f"{runlayout.QUEUE_DIR}/claims"


def claim_key(shard: str, generation: int) -> str:
    return f"{claims_prefix()}/{shard}/g{generation:04d}.json"


def mark_key(shard: str, generation: int, mark: str) -> str:
    return f"{claims_prefix()}/{shard}/g{generation:04d}.{mark}.json"


@dataclass
class Claim:
    shard: str
    generation: int
    body: dict

    @property
    def key(self) -> str:
        return claim_key(self.shard, self.generation)


@dataclass
class ShardState:
    """What one listing says about a shard: its claim generations and their marks."""

    claims: dict[int, ObjectInfo] = field(default_factory=dict)
    done: set[int] = field(default_factory=set)
    failed: set[int] = field(default_factory=set)

    @property
    def latest(self) -> int:
        return max(self.claims) if self.claims else -1

    @property
    def finished(self) -> bool:
        return self.latest in self.done

    @property
    def failed_latest(self) -> bool:
        return self.latest in self.failed and self.latest not in self.done

    def heartbeat_age(self, now: datetime) -> float:
        info = self.claims.get(self.latest)
        return (now - info.last_modified).total_seconds() if info else 0.0


class WorkQueue:
    """Claims of one lane process on one run. Thread-safe: the heartbeat thread rewrites claims
    while the feeder makes new ones.
    """

    def __init__(self, store: Store, *, lane: int, lanes: int, attempt: int, ttl: float) -> None:
        self.store = store
        self.lane = lane
        self.lanes = lanes
        self.attempt = attempt
        self.ttl = ttl
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self._active: dict[str, Claim] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.heartbeat_errors = 0
        #: (shard, generation) this process created: its own log, for tests and the exit code.
        self.made: list[tuple[str, int, str]] = []

    # -- claims ---------------------------------------------------------------------------------------
    def _body(self, shard: str, generation: int, reason: str, beats: int = 0) -> dict:
        now = datetime.now(UTC).isoformat()
        return {
            "shard": shard,
            "generation": generation,
            "reason": reason,  # new | stale | failed | resume
            "lane": self.lane,
            "lanes": self.lanes,
            "attempt": self.attempt,
            "host": self.host,
            "token": self.token,
            "claimed_at": now,
            "heartbeat_at": now,
            "beats": beats,
        }

    def try_claim(self, shard: str, generation: int = 0, reason: str = "new") -> Claim | None:
        """Create generation `generation` of `shard`'s claim; None when another worker has it."""
        body = self._body(shard, generation, reason)
        if not self.store.create_bytes(
            claim_key(shard, generation), json.dumps(body).encode(), content_type="application/json"
        ):
            return None
        claim = Claim(shard, generation, body)
        with self._lock:
            self._active[shard] = claim
            self.made.append((shard, generation, reason))
        return claim

    def finish(self, claim: Claim, doc: dict, *, failed: bool) -> None:
        """Mark the claim done (or failed and open to takeover); the shard's results are written."""
        with self._lock:
            self._active.pop(claim.shard, None)
        mark = "failed" if failed else "done"
        record = {"lane": self.lane, "attempt": self.attempt, "token": self.token, **doc}
        self.store.create_bytes(
            mark_key(claim.shard, claim.generation, mark), json.dumps(record).encode(), content_type="application/json"
        )

    def release(self, claim: Claim) -> None:
        """Stop heartbeating a claim that will not be finished here (its lane is shutting down)."""
        with self._lock:
            self._active.pop(claim.shard, None)

    def read(self, shard: str, generation: int) -> dict:
        try:
            value = json.loads(self.store.get_bytes(claim_key(shard, generation)))
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

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
            generation = int(match["gen"])
            if match["mark"] == ".done":
                state.done.add(generation)
            elif match["mark"] == ".failed":
                state.failed.add(generation)
            else:
                state.claims[generation] = info
        return states

    # -- heartbeats -----------------------------------------------------------------------------------
    def start_heartbeats(self) -> None:
        self._thread = threading.Thread(target=self._beat, name="heartbeat", daemon=True)
        self._thread.start()

    def stop_heartbeats(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _beat(self) -> None:
        interval = max(self.ttl / 4, 0.05)
        while not self._stop.wait(interval):
            with self._lock:
                active = list(self._active.values())
            for claim in active:
                claim.body["beats"] += 1
                claim.body["heartbeat_at"] = datetime.now(UTC).isoformat()
                try:
                    self.store.put_bytes(claim.key, json.dumps(claim.body).encode(), content_type="application/json")
                except Exception:
                    self.heartbeat_errors += 1
