"""Which shard a lane takes next: its own unfinished claims, its stride, then others' work, then
stale or failed claims, until every shard of the run is finished.

  1. resume: claims whose latest generation belongs to this lane and is not done (the pod of an
     earlier attempt died or failed): taken over at once, without waiting for the TTL;
  2. stride: shards lane, lane+lanes, ... not claimed yet (most claims succeed without contention);
  3. steal: unclaimed shards of other lanes, from the tail of each other lane's stride, so that a
     thief and the owner meet in the middle instead of colliding at every shard;
  4. stragglers: wait for claims in flight; take over those whose heartbeat is older than the TTL
     and those marked failed (up to `max_generations` claims per shard).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

from steps.infer.claims import Claim, ShardState, WorkQueue

#: At most this many open shards are checked one listing each instead of listing the whole queue.
_FEW = 16


def _log(message: str) -> None:
    print(f"steps.infer: {message}", file=sys.stderr, flush=True)


class Scheduler:
    def __init__(self, queue: WorkQueue, names: list[str], *, max_generations: int = 4, poll_s: float = 5.0) -> None:
        self.queue = queue
        self.names = names
        self.max_generations = max_generations
        self.poll_s = poll_s
        self.stop = threading.Event()
        #: Set when this lane finishes a shard: the last waits are mostly for the lane's own shards
        #: in flight, and a poll interval of sleep after each would idle the pod for nothing.
        self.wake = threading.Event()
        self.takeovers = 0

    def _mine(self, shard: str, state: ShardState) -> bool:
        body = self.queue.read(shard, state.latest)
        return body.get("lane") == self.queue.lane and body.get("token") != self.queue.token

    def _resume(self, states: dict[str, ShardState]) -> Iterator[Claim]:
        for shard in self.names:
            state = states.get(shard)
            if state is None or state.finished or state.latest + 1 >= self.max_generations:
                continue
            if self._mine(shard, state):
                claim = self.queue.try_claim(shard, state.latest + 1, "resume")
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
        """Shards not finished, leaving out those this process marked failed itself (its retry, or
        another lane, takes them over) and those out of generations.
        """
        mine = {(s, g) for s, g, _ in self.queue.made}

        def settled(shard: str, state: ShardState) -> bool:
            if state.finished:
                return True
            return state.failed_latest and (state.latest + 1 >= self.max_generations or (shard, state.latest) in mine)

        return [s for s in (self.names if among is None else among) if s not in states or not settled(s, states[s])]

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
                state = states.get(shard)
                if state is None:
                    claim = self.queue.try_claim(shard)
                elif state.latest + 1 >= self.max_generations:
                    continue
                elif state.failed_latest:
                    claim = self.queue.try_claim(shard, state.latest + 1, "failed")
                elif state.heartbeat_age(now) > self.queue.ttl:
                    claim = self.queue.try_claim(shard, state.latest + 1, "stale")
                    if claim is not None:
                        self.takeovers += 1
                        _log(
                            f"lane {self.queue.lane}: took over {shard} generation {state.latest} "
                            f"(no heartbeat for {state.heartbeat_age(now):.1f}s > --claim-ttl={self.queue.ttl:g})"
                        )
                else:
                    continue
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
