"""A lane worker: one long-lived pod that loads the model once and then claims shards from the run's
work queue (steps/infer/claims.py) until every shard is committed.

All the lane's shards flow through one Pipeline as one stream of items: the feeder claims the
next shard when the current one's last item enters the queue, so its downloads overlap the current
shard's tail and the accelerator never waits on a shard boundary. Each item result is booked to
its shard; the shard's last result commits it.

Outputs stay exactly once (docs/exactly-once.md): a shard's outcome is one commit object, made by
create-if-absent, that holds its metrics and result records and names its output keys. Each
generation writes its outputs to its own staging (steps/infer/fenced.py); only the commit's
generation is published to the final keys, results/ and metrics/, by its lane or, if that lane
died, by the next lane to finish. A generation that lost leaves nothing anyone reads.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.outputs import write_outputs
from steps.common.storage import Store, open_store, probe_conditional_writes, request_counts
from steps.infer import fenced, shard_output, wiring
from steps.infer.claims import Claim, WorkQueue
from steps.infer.fenced import FencedStore
from steps.infer.metrics import Metrics, shard_summary
from steps.infer.params import InferParams
from steps.infer.pipeline import Item, ItemResult, Pipeline, workers
from steps.infer.schedule import Scheduler
from steps.infer.shard_files import exit_code, read_index, read_shard, result_records, write_shard_results

_OUTPUT_SUFFIXES = (runlayout.result_key(""), runlayout.mask_key(""))
_STAGED = re.compile(rf"^{shard_output.DIR}/(?P<shard>.+)\.g(?P<gen>\d{{4,}})\.(?:masks|jsonl)$")
#: Failure reasons kept in a failed mark: enough to say why, bounded for a shard of many items.
_MARK_FAILURES = 10


@dataclass
class _ShardRun:
    claim: Claim
    uri: str
    items: int
    started: datetime
    t0: float
    results: list[ItemResult] = field(default_factory=list)
    fed: bool = False  # every item handed to the pipeline (or resumed)


@dataclass
class LaneInfo:
    """What the lane knows of its model, for the shard metrics."""

    model_kind: str = ""
    providers: list[str] = field(default_factory=list)


class Lane:
    """Feeds the pipeline with the items of the shards it claims and books their results."""

    def __init__(self, params: InferParams, run_store: Store, outputs: Store, queue: WorkQueue, index: list[dict]):
        self.params = params
        self.run_store = run_store
        self.queue = queue
        self.keys = {s["name"]: s["key"] for s in index}
        names = [s["name"] for s in index]
        # Polls only run at the tail (waiting on other lanes' last shards, few listings each), so a
        # short interval costs little and keeps lanes from idling after the work is done.
        self.scheduler = Scheduler(
            queue, names, items={s["name"]: s["items"] for s in index}, poll_s=min(max(params.claim_ttl / 8, 0.1), 1.0)
        )
        # A starved heartbeat thread (two busy cores) must not fail writes while the claim is still ours:
        # a write waits until a beat confirms the claim or is refused, bounded at a few TTLs.
        self.outputs = FencedStore(
            outputs, run_store, claim_of=self._claim_of, lease_s=queue.lease_s, wait_s=3 * params.claim_ttl
        )
        self._owner: dict[str, _ShardRun] = {}
        self._lock = threading.Lock()
        self.finished: list[dict] = []
        self.over_ratio: list[tuple[str, int]] = []  # (shard, exit code it asks for)
        self.refused: list[tuple[str, int]] = []  # (shard, generation) not committed: lost or beaten
        self.error: BaseException | None = None
        self.info = LaneInfo()
        self.shard_done: Callable[[], None] = lambda: None
        self.progress: Callable[[], None] = lambda: None  # after each finished shard

    # -- fencing --------------------------------------------------------------------------------------
    def _claim_of(self, key: str) -> Claim | None:
        """The claim an output key is written under: its item's shard, or a staged per-shard object's."""
        if staged := _STAGED.match(key):
            with self._lock:
                runs = {id(r): r for r in self._owner.values()}.values()
            claims = [r.claim for r in runs if r.claim.shard == staged["shard"]]
            return claims[0] if claims else self.queue.active(staged["shard"])
        for suffix in _OUTPUT_SUFFIXES:
            if key.endswith(suffix):
                with self._lock:
                    shard = self._owner.get(key[: -len(suffix)])
                if shard is not None:
                    return shard.claim
        return None

    # -- feeding --------------------------------------------------------------------------------------
    def _open(self, claim: Claim) -> tuple[_ShardRun, list[Item]]:
        """The claimed shard's items, all of them: a generation that did not commit left nothing
        anyone may reuse (its outputs stayed in its own staging).
        """
        key = self.keys[claim.shard]
        uri = self.run_store.uri_for(key)
        items = read_shard(self.run_store, key, uri)
        shard = _ShardRun(claim, uri, len(items), datetime.now(UTC), time.perf_counter())
        with self._lock:
            for item in items:
                self._owner[item.key] = shard
        return shard, items

    def items(self) -> Iterator[Item]:
        try:
            for claim in self.scheduler.claims():
                shard, items = self._open(claim)
                for item in items:
                    if claim.lost.is_set():  # taken over: the rest of the shard is not ours to do
                        self.record(ItemResult(item.key, "failed", "claim lost", transient=True))
                        continue
                    yield item
                with self._lock:
                    shard.fed = True
                    complete = len(shard.results) == shard.items
                if complete:
                    self._finalize(shard)
                if self.error is not None:
                    return
        except BaseException as error:
            self.error = error

    def run_per_shard(self, make) -> dict[str, int]:
        """--output-layout=per-shard writes one output file per shard at the shard's end, so each
        shard gets its own pipeline (the model stays loaded; no overlap across shard boundaries).
        Each generation writes under its own names (shard_output.staged_name) and runs the whole shard.
        """
        requests: dict[str, int] = {}
        try:
            for claim in self.scheduler.claims():
                shard, items = self._open(claim)
                with self._lock:
                    shard.fed = True
                pipeline = make(shard_output.staged_name(claim.shard, claim.generation), None)
                pipeline.run(items)
                for kind, count in pipeline.requests.items():
                    requests[kind] = requests.get(kind, 0) + count
                if not items:
                    self._finalize(shard)
                if self.error is not None:
                    break
        except BaseException as error:
            self.error = self.error or error
        return requests

    # -- booking --------------------------------------------------------------------------------------
    def record(self, result: ItemResult) -> None:
        with self._lock:
            shard = self._owner.pop(result.key, None)
            if shard is None:
                return
            shard.results.append(result)
            complete = shard.fed and len(shard.results) == shard.items
        if complete:
            self._finalize(shard)

    def _finalize(self, shard: _ShardRun) -> None:
        try:
            self._write(shard)
        except BaseException as error:
            self.queue.release(shard.claim)
            self.error = self.error or error
            self.scheduler.stop.set()

    def _summary(self, shard: _ShardRun) -> dict:
        claim = shard.claim
        return shard_summary(
            shard.results,
            self.params,
            shard=claim.shard,
            shard_uri=shard.uri,
            postprocess=self.info.model_kind,
            providers=self.info.providers,
            started=shard.started,
            wall_s=time.perf_counter() - shard.t0,
            lane=self.params.lane,
            lanes=self.params.lanes,
            generation=claim.generation,
            claim_reason=claim.body["reason"],
        )

    def _write(self, shard: _ShardRun) -> None:
        claim = shard.claim
        if claim.lost.is_set():  # taken over: its results are not this shard's, whatever they are
            self._abandon(shard, "commit refused: the claim was lost")
            return
        doc = self._summary(shard)
        over = shard.items > 0 and doc["failed"] / shard.items > self.params.max_failure_ratio
        code = exit_code(shard.results) if over else 0
        counts = {k: doc[k] for k in ("items", "processed", "processed_now", "resumed", "failed")}
        if code == 1 and not self.scheduler.last_generation(claim.generation):
            # Transient failures over the ratio: marked failed, so another lane (or this lane's retry)
            # takes the shard over at once and runs it again (nothing uncommitted is reused). Bad
            # inputs only, or the last allowed generation: committed with its failures, for good.
            # The reasons travel with the mark: the next generation's metrics replace this one's.
            self.queue.mark_failed(claim, counts | {"failures": doc["failures"][:_MARK_FAILURES]})
            self._abandon(shard, "marked failed: transient failures over --max-failure-ratio", refused=False)
            first = doc["failures"][0]  # exit code 1: at least one transient failure
            print(
                f"steps.infer: lane {self.params.lane}: {claim.shard} generation {claim.generation} marked failed "
                f"for a takeover; first: {first['key']}: {first['reason']}",
                file=sys.stderr,
                flush=True,
            )
        elif not self._commit(shard, doc):
            return
        with self._lock:
            self.finished.append(doc)
            if over:
                self.over_ratio.append((claim.shard, code))
        self.shard_done()
        self.progress()
        self.scheduler.wake.set()
        print(
            f"steps.infer: lane {self.params.lane}: {claim.shard} (generation {claim.generation}, "
            f"{claim.body['reason']}): {doc['processed']} processed ({doc['resumed']} resumed), {doc['failed']} failed",
            file=sys.stderr,
            flush=True,
        )

    def _commit(self, shard: _ShardRun, doc: dict) -> bool:
        """Commit the shard's outcome; when it wins, publish results/ and metrics/ (and the per-shard
        JSONL) for readers that look there. False when refused: the staged outputs are deleted.
        """
        claim, records = shard.claim, result_records(shard.results)
        outputs = sorted({key for r in shard.results if r.status == "ok" for key in r.outputs})
        if not self.queue.commit(claim, {"outputs": outputs, "metrics": doc, "results": records}):
            self._abandon(shard, "commit refused: the claim was lost or another generation committed first")
            return False
        _publish(self, claim.shard, claim.generation, outputs)
        write_shard_results(self.run_store, claim.shard, records, doc)  # last: the shard is published
        fenced.discard(self.run_store, claim.shard)
        return True

    def _abandon(self, shard: _ShardRun, why: str, *, refused: bool = True) -> None:
        claim = shard.claim
        self.queue.release(claim)
        if self.params.output_layout == "per-shard":
            self.outputs.inner.delete_many(shard_output.staged_keys(claim.shard, claim.generation))
        fenced.discard(self.run_store, claim.shard, claim.generation)
        if refused:
            with self._lock:
                self.refused.append((claim.shard, claim.generation))
            print(
                f"steps.infer: lane {self.params.lane}: {claim.shard} generation {claim.generation}: {why}; "
                "its staged outputs are deleted",
                file=sys.stderr,
                flush=True,
            )
            self.scheduler.wake.set()


def _publish(lane: Lane, shard: str, generation: int, outputs: list[str]) -> None:
    """The committed generation's outputs to their final keys (per-image: from its staging)."""
    if lane.params.output_layout == "per-shard":
        shard_output.publish(lane.outputs.inner, shard, generation, lane.scheduler.max_generations)
    else:
        fenced.publish(lane.run_store, lane.outputs.inner, shard, generation, outputs, workers(lane.params)[1])


def roll_forward(lane: Lane) -> int:
    """Publish the copies a committer died before writing (killed between its commit and them):
    from the commit itself, which holds the metrics and result records. The same bytes whoever
    writes them, so lanes may race here. How many shards were published.
    """
    store = lane.run_store
    published = {runlayout.shard_name(o.key) for o in store.list(runlayout.RESULTS_DIR)}
    states = lane.queue.scan()
    missing = [s for s in lane.scheduler.names if s not in published and s in states and states[s].finished]
    count = 0
    for shard in missing:
        commit = lane.queue.read_commit(shard)
        if commit is None or commit.get("status") != "done":
            continue
        _publish(lane, shard, int(commit["generation"]), commit["outputs"])
        write_shard_results(store, shard, commit["results"], commit["metrics"])
        fenced.discard(store, shard)
        count += 1
    return count


def unresolved(queue: WorkQueue, over_ratio: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The shards over --max-failure-ratio that still need this lane's exit code: one marked failed
    (transient, exit 1) that another lane has committed meanwhile needs no retry of this pod.
    Shards still open keep exit 1, so Argo retries the pod and its retry resumes them.
    """
    retried = [shard for shard, code in over_ratio if code == 1]
    states = queue.scan(retried) if retried else {}
    return [(s, c) for s, c in over_ratio if not (c == 1 and s in states and states[s].finished)]


@dataclass
class _Setup:
    run_store: Store
    queue: WorkQueue
    lane: Lane
    metrics: Metrics
    make: Callable[..., Pipeline]
    startup: float


def _set_up(params: InferParams, started: float) -> _Setup:
    storage = wiring.storage_options(params)
    run_store = open_store(params.run_uri, max_pool_connections=wiring.pool_size(params) + 4, **storage)
    # Read first, so a --run-uri that ingest never wrote is refused before the probe writes into it.
    index = read_index(run_store)
    # Before the model loads: a server that ignores If-None-Match or If-Match must be refused, never used.
    probe_conditional_writes(run_store, f"{runlayout.QUEUE_DIR}/probe")

    model = wiring.warm_model(params)
    stores = wiring.item_stores(params)
    # Heartbeats get their own client: a few seconds per attempt and two attempts, so a beat ends
    # well within the TTL whatever the uploads do to the main pool.
    beat_timeout = max(0.5, min(params.claim_ttl / 8, 10.0))
    beats = open_store(params.run_uri, s3_endpoint=params.s3_endpoint, max_attempts=2, timeout_s=beat_timeout)
    queue = WorkQueue(
        run_store, lane=params.lane, lanes=params.lanes, attempt=params.attempt, ttl=params.claim_ttl, beats=beats
    )
    lane = Lane(params, run_store, stores[0], queue, index)
    lane.info = LaneInfo(model.spec.postprocess.kind, list(model.providers))
    metrics = Metrics(
        f"lane-{params.lane}", model.providers, run=params.run_uri.rstrip("/").rsplit("/", 1)[-1], env=params.env
    )

    def record(result: ItemResult) -> None:
        metrics.record(result)
        lane.record(result)

    def make(shard: str = "lane", resume_after: datetime | None = None) -> Pipeline:
        return wiring.pipeline(
            params,
            model,
            (lane.outputs, stores[1]),
            on_result=record,
            on_batch=metrics.record_batch,
            shard=shard,
            resume_after=resume_after,
        )

    return _Setup(run_store, queue, lane, metrics, make, time.perf_counter() - started)


def _run_shards(params: InferParams, setup: _Setup) -> dict[str, int]:
    lane, queue = setup.lane, setup.queue
    queue.start_heartbeats()
    try:
        if params.output_layout == "per-shard":
            return lane.run_per_shard(setup.make)
        # One stream across shards: the next shard's downloads overlap this one's tail.
        pipeline = setup.make()
        # The lane books every result to its shard; the pipeline's own list would grow with
        # every image the lane ever processes, so it is emptied as shards finish.
        lane.shard_done = pipeline.results.clear
        pipeline.run(lane.items())
        return pipeline.requests
    finally:
        queue.stop_heartbeats()


def _lane_doc(params: InferParams, setup: _Setup, wall: float) -> dict:
    lane, queue = setup.lane, setup.queue
    return {
        "lane": params.lane,
        "lanes": params.lanes,
        "attempt": params.attempt,
        "host": queue.host,
        "token": queue.token,
        "startup_seconds": round(setup.startup, 4),
        "wall_seconds": round(wall, 4),
        "shards": len(lane.finished),
        "processed": sum(d["processed"] for d in lane.finished),
        "processed_now": sum(d["processed_now"] for d in lane.finished),
        "failed": sum(d["failed"] for d in lane.finished),
        "takeovers": lane.scheduler.takeovers,
        "lost_claims": len(queue.lost),
        "refused_commits": len(lane.refused),
        "failed_shards": lane.scheduler.failed_shards,
        "heartbeat_errors": queue.heartbeat_errors,
        "requests": request_counts(),
    }


def _stop_on_sigterm(queue: WorkQueue, lane: int) -> None:
    """A deleted or evicted pod gets SIGTERM from kubelet, then SIGKILL after its grace period.
    The lane hands its claims back (marked failed) and exits 143 at once, so the retry or another
    lane starts on them now rather than a claim TTL later; what it staged stays unpublished.
    """

    def stop(signum: int) -> None:
        name = signal.Signals(signum).name
        held = queue.hand_back(f"{name}: the lane's pod was stopped")
        shards = ", ".join(f"{c.shard} generation {c.generation}" for c in held) or "none"
        sys.stderr.write(f"steps.infer: lane {lane}: {name}: handed back its claims ({shards}) for a takeover\n")
        sys.stderr.flush()
        os._exit(128 + signum)  # the worker threads may be blocked on I/O: do not wait for them

    def on_signal(signum: int, _frame: object) -> None:
        # The handler interrupts the main thread wherever it is, perhaps inside the queue's lock or
        # making a claim: the hand-back runs on a thread of its own while the main thread goes on.
        threading.Thread(target=stop, args=(signum,), name="sigterm", daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)


def run_lane(params: InferParams) -> int:
    started = time.perf_counter()
    setup = _set_up(params, started)
    _stop_on_sigterm(setup.queue, params.lane)
    lane, metrics = setup.lane, setup.metrics
    t0 = time.perf_counter()

    def progress() -> None:
        # A lane lives as long as the run: pushed only at its exit, the gauges would reach Prometheus
        # after the run (and the benchmark's window for it) had ended, and dashboards would show
        # nothing for hours. So each finished shard pushes the lane's figures so far.
        with lane._lock:
            now = sum(d["processed_now"] for d in lane.finished)
        elapsed = time.perf_counter() - t0
        metrics.ips.set(round(now / elapsed, 3) if elapsed > 0 else 0.0)
        metrics.seconds.set(time.perf_counter() - started)
        metrics.push(params.pushgateway)

    if params.pushgateway:
        lane.progress = progress
    item_requests = _run_shards(params, setup)
    metrics.record_requests(item_requests)
    wall = time.perf_counter() - t0
    if lane.error is not None:
        raise lane.error
    roll_forward(lane)
    doc = _lane_doc(params, setup, wall)
    metrics.ips.set(round(doc["processed_now"] / wall, 3) if wall > 0 else 0.0)
    metrics.seconds.set(time.perf_counter() - started)  # the lane's whole life, model load included
    write_outputs(
        params.outputs_dir,
        {"processed": str(doc["processed"]), "failed": str(doc["failed"]), "shards": str(doc["shards"])},
    )
    if params.pushgateway:
        metrics.push(params.pushgateway)
    setup.run_store.put_bytes(
        f"{runlayout.LANES_DIR}/lane-{params.lane:04d}-a{params.attempt}-{setup.queue.token[:8]}.json",
        json.dumps(doc).encode(),
        content_type="application/json",
    )
    return _exit(params, setup, doc, wall)


def _exit(params: InferParams, setup: _Setup, doc: dict, wall: float) -> int:
    print(
        f"steps.infer: lane {params.lane}/{params.lanes}: {doc['shards']} shards, {doc['processed']} processed, "
        f"{doc['failed']} failed, {doc['processed_now'] / wall if wall > 0 else 0:.1f} images/s after "
        f"{setup.startup:.2f}s startup; {doc['takeovers']} takeovers, {doc['lost_claims']} lost claims, "
        f"{doc['refused_commits']} refused commits, {len(doc['failed_shards'])} shards failed; "
        f"requests {doc['requests']}",
        file=sys.stderr,
    )
    over_ratio = unresolved(setup.queue, setup.lane.over_ratio)
    if over_ratio:
        shard, _ = over_ratio[0]
        print(
            f"steps.infer: error: {len(over_ratio)} shards over --max-failure-ratio={params.max_failure_ratio} "
            f"(first: {shard}; see {params.run_uri.rstrip('/')}/{runlayout.METRICS_DIR}/{shard}.json)",
            file=sys.stderr,
        )
        return 1 if any(code == 1 for _, code in over_ratio) else 2
    return 0
