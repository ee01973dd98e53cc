"""Which shard a lane takes next: its own unfinished claims, its stride, then others' work, then
stale or failed claims, until every shard of the run is committed (done or failed).

  1. resume: claims whose latest generation belongs to this lane (an earlier attempt of its pod),
     once that attempt is proven gone: its heartbeat is older than the TTL, or its process no longer
     exists on this host. A retried pod may start while the old one still runs (node loss), and a
     live old attempt must not lose its claim to its own retry;
  2. stride: shards lane, lane+lanes, ... not claimed yet (most claims succeed without contention);
  3. steal: unclaimed shards of other lanes, from the tail of each other lane's stride, so that a
     thief and the owner meet in the middle instead of colliding at every shard;
  4. stragglers: wait for claims in flight; take over those whose owner is gone (stale heartbeat)
     and those marked failed, up to `max_generations` claims per shard. A shard whose last allowed
     generation died too is committed as failed, so the run ends instead of waiting on it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from datetime import datetime

from steps.infer import fenced
from steps.infer.claims import Claim, ShardState, WorkQueue, proven_gone

#: At most this many open shards are checked one listing each instead of listing the whole queue.
_FEW = 16


def _log(message: str) -> None:
    print(f"steps.infer: {message}", file=sys.stderr, flush=True)


class Scheduler:
    def __init__(
        self,
        queue: WorkQueue,
        names: list[str],
        *,
        items: dict[str, int] | None = None,
        max_generations: int = 4,
        poll_s: float = 5.0,
    ) -> None:
        self.queue = queue
        self.names = names
        self.items = items or {}
        self.max_generations = max_generations
        self.poll_s = poll_s
        self.stop = threading.Event()
        #: Set when this lane finishes a shard: the last waits are mostly for the lane's own shards
        #: in flight, and a poll interval of sleep after each would idle the pod for nothing.
        self.wake = threading.Event()
        self.takeovers = 0
        self.failed_shards: list[str] = []

    def last_generation(self, generation: int) -> bool:
        return generation + 1 >= self.max_generations

    def _gone(self, shard: str, state: ShardState, now: datetime) -> tuple[bool, dict]:
        """Whether the owner of the shard's latest claim is gone, and that claim's body. Past the TTL
        it is; a dead process on this host is the one other proof, looked for once two beats are
        missed (a GET per claim and poll would be wasted on owners that are alive).
        """
        age = state.heartbeat_age(now)
        if age > self.queue.ttl:
            return True, {}
        if age < self.queue.ttl / 2:
            return False, {}
        body = self.queue.read(shard, state.latest)
        return proven_gone(body, self.queue.host), body

    def _take_over(self, shard: str, state: ShardState, now: datetime, reason: str) -> Claim | None:
        if self.last_generation(state.latest):
            if self.queue.fail_shard(shard, state, self.items.get(shard, 0)):
                self.failed_shards.append(shard)
                _log(f"lane {self.queue.lane}: {shard} failed: generation {state.latest} was the last allowed")
                fenced.discard(self.queue.store, shard)  # the dead generations' partial outputs
            return None
        claim = self.queue.try_claim(shard, state.latest + 1, reason, supersede=state.claims[state.latest])
        if claim is not None:
            self.takeovers += 1
            age = state.heartbeat_age(now)
            why = f"no heartbeat for {age:.1f}s > --claim-ttl={self.queue.ttl:g}" if age > self.queue.ttl else None
            _log(
                f"lane {self.queue.lane}: took over {shard} generation {state.latest} "
                f"({why or 'its process is gone'}; {reason})"
            )
        return claim

    def _resume(self, states: dict[str, ShardState]) -> Iterator[Claim]:
        now = self.queue.store.server_time()
        for shard in self.names:
            state = states.get(shard)
            if state is None or state.finished or not state.claims:
                continue
            body = self.queue.read(shard, state.latest)
            if body.get("lane") != self.queue.lane or body.get("token") == self.queue.token:
                continue
            if state.heartbeat_age(now) > self.queue.ttl or proven_gone(body, self.queue.host):
                claim = self._take_over(shard, state, now, "resume")
                if claim is not None:
                    _log(f"lane {self.queue.lane}: resuming its own claim of {shard} (generation {state.latest})")
                    yield claim

    def _stride(self, states: dict[str, ShardState]) -> Iterator[Claim]:
        for shard in self.names[self.queue.lane :: self.queue.lanes]:
            if shard not in states and (claim := self.queue.try_claim(shard)) is not None:
                yield claim

    def _steal_order(self, free: set[str]) -> list[str]:
        lane, lanes = self.queue.lane, self.queue.lanes
        order = []
        for k in range(1, lanes + 1):
            victim = (lane + k) % lanes
            order += [s for s in reversed(self.names[victim::lanes]) if s in free]
        return order

    def _steal(self) -> Iterator[Claim]:
        while not self.stop.is_set():
            states = self.queue.scan()
            free = set(self.names) - set(states)
            if not free:
                return
            for shard in self._steal_order(free):
                if self.stop.is_set():
                    return
                claim = self.queue.try_claim(shard)
                if claim is not None:
                    yield claim

    def _pending(self, states: dict[str, ShardState], among: list[str] | None = None) -> list[str]:
        """Shards not committed, leaving out those this process marked failed itself (its retry, or
        another lane, takes them over).
        """
        mine = {(s, g) for s, g, _ in self.queue.made}

        def settled(shard: str, state: ShardState) -> bool:
            return state.finished or (state.failed_latest and (shard, state.latest) in mine)

        return [s for s in (self.names if among is None else among) if s not in states or not settled(s, states[s])]

    def _next(self, shard: str, state: ShardState | None, now: datetime) -> Claim | None:
        if state is None or not state.claims:
            return self.queue.try_claim(shard)
        if state.failed_latest:
            if self.last_generation(state.latest):
                return self._take_over(shard, state, now, "failed")
            return self.queue.try_claim(shard, state.latest + 1, "failed")
        gone, body = self._gone(shard, state, now)
        if not gone:
            return None
        if not body:
            body = self.queue.read(shard, state.latest)
        mine = body.get("lane") == self.queue.lane and body.get("token") != self.queue.token
        return self._take_over(shard, state, now, "resume" if mine else "stale")

    def _stragglers(self) -> Iterator[Claim]:
        states = self.queue.scan()
        pending = self._pending(states)
        while not self.stop.is_set():
            # The tail: list just the shards still open.
            states = self.queue.scan(pending) if len(pending) <= _FEW else self.queue.scan()
            pending = self._pending(states, pending)
            if not pending:
                return
            now = self.queue.store.server_time()
            for shard in pending:
                if self.stop.is_set():
                    return
                claim = self._next(shard, states.get(shard), now)
                if claim is not None:
                    yield claim
            self.wake.wait(self.poll_s)
            self.wake.clear()

    def claims(self) -> Iterator[Claim]:
        states = self.queue.scan()
        yield from self._resume(states)
        yield from self._stride(states)
        yield from self._steal()
        yield from self._stragglers()
