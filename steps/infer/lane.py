"""A lane worker: one long-lived pod that loads the model once and then claims shards from the run's
work queue (steps/infer/claims.py) until none is left.

All the lane's shards flow through one Pipeline as one stream of items: the feeder claims the
next shard when the current one's last item enters the queue, so its downloads overlap the current
shard's tail and the accelerator never waits on a shard boundary. Each item result is booked to
its shard; the shard's last result writes results/ and metrics/ and then marks the claim done.

Outputs stay exactly once: output keys are deterministic, the result JSON of an item is written
last, and a shard taken over (stale heartbeat, failed attempt, a retried lane pod) skips the items
whose result is newer than the shard file, so a crash or a takeover never duplicates an output.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

from steps.common import runlayout
from steps.common.outputs import write_outputs
from steps.common.storage import Store, open_store, probe_conditional_writes, request_counts
from steps.infer import wiring
from steps.infer.claims import Claim, WorkQueue
from steps.infer.metrics import Metrics, summary
from steps.infer.params import InferParams
from steps.infer.pipeline import Item, ItemResult, Pipeline
from steps.infer.schedule import Scheduler
from steps.infer.shard_files import exit_code, read_index, read_shard, write_shard_results


@dataclass
class _ShardRun:
    claim: Claim
    uri: str
    items: int
    started: datetime
    t0: float
    results: list[ItemResult] = field(default_factory=list)
    fed: bool = False  # every item handed to the pipeline (or resumed)


class Lane:
    """Feeds the pipeline with the items of the shards it claims and books their results."""

    def __init__(self, params: InferParams, run_store: Store, outputs: Store, queue: WorkQueue, index: list[dict]):
        self.params = params
        self.run_store = run_store
        self.outputs = outputs
        self.queue = queue
        self.keys = {s["name"]: s["key"] for s in index}
        names = [s["name"] for s in index]
        # Polls only run at the tail (waiting on other lanes' last shards, few listings each), so a
        # short interval costs little and keeps lanes from idling after the work is done.
        self.scheduler = Scheduler(queue, names, poll_s=min(max(params.claim_ttl / 8, 0.1), 1.0))
        self._owner: dict[str, _ShardRun] = {}
        self._lock = threading.Lock()
        self.finished: list[dict] = []
        self.over_ratio: list[tuple[str, int]] = []  # (shard, exit code it asks for)
        self.error: BaseException | None = None
        self.model_kind = ""
        self.providers: list[str] = []
        self.shard_done: Callable[[], None] = lambda: None
        self.progress: Callable[[], None] = lambda: None  # after each finished shard

    # -- feeding --------------------------------------------------------------------------------------
    def _resumed(self, shard: _ShardRun, items: list[Item], since: datetime) -> set[str]:
        """Keys of items a previous owner finished: their result JSON is newer than the shard file."""

        def done(item: Item) -> bool:
            info = self.outputs.head(runlayout.result_key(item.key))
            return info is not None and info.last_modified >= since

        with ThreadPoolExecutor(max(1, self.params.prefetch_workers)) as pool:
            flags = list(pool.map(done, items))
        return {item.key for item, flag in zip(items, flags, strict=True) if flag}

    def _open(self, claim: Claim) -> tuple[_ShardRun, list[Item]]:
        key = self.keys[claim.shard]
        uri = self.run_store.uri_for(key)
        info = self.run_store.head(key)
        items = read_shard(self.run_store, key, uri)
        shard = _ShardRun(claim, uri, len(items), datetime.now(UTC), time.perf_counter())
        if claim.generation > 0 and info is not None:
            skip = self._resumed(shard, items, info.last_modified)
            for item in items:
                if item.key in skip:
                    shard.results.append(ItemResult(item.key, "resumed", outputs=[runlayout.result_key(item.key)]))
            items = [i for i in items if i.key not in skip]
        return shard, items

    def items(self) -> Iterator[Item]:
        try:
            for claim in self.scheduler.claims():
                shard, items = self._open(claim)
                with self._lock:
                    for item in items:
                        self._owner[item.key] = shard
                for item in items:
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
        """
        requests: dict[str, int] = {}
        try:
            for claim in self.scheduler.claims():
                key = self.keys[claim.shard]
                info = self.run_store.head(key)
                items = read_shard(self.run_store, key, self.run_store.uri_for(key))
                shard = _ShardRun(
                    claim, self.run_store.uri_for(key), len(items), datetime.now(UTC), time.perf_counter()
                )
                with self._lock:
                    for item in items:
                        self._owner[item.key] = shard
                    shard.fed = True
                since = info.last_modified if claim.generation > 0 and info is not None else None
                pipeline = make(claim.shard, since)
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

    def _write(self, shard: _ShardRun) -> None:
        p, claim = self.params, shard.claim
        finished = datetime.now(UTC)
        doc = summary(
            shard.results,
            started=shard.started,
            finished=finished,
            wall_s=time.perf_counter() - shard.t0,
            shard=claim.shard,
            shard_uri=shard.uri,
            output_uri=p.output_uri,
            model_uri=p.model_uri,
            postprocess=self.model_kind,
            device=p.device,
            providers=self.providers,
            batch_size=p.batch_size,
            lane=p.lane,
            lanes=p.lanes,
            generation=claim.generation,
            claim_reason=claim.body["reason"],
        )
        write_shard_results(self.run_store, claim.shard, shard.results, doc)
        failed = doc["failed"]
        over = shard.items > 0 and failed / shard.items > p.max_failure_ratio
        code = exit_code(shard.results) if over else 0
        # Transient failures over the ratio: marked failed, so another lane (or this lane's retry)
        # takes the shard over and retries only the failed items. Bad inputs only: done for good.
        self.queue.finish(
            claim,
            {k: doc[k] for k in ("items", "processed", "processed_now", "resumed", "failed")},
            failed=code == 1,
        )
        with self._lock:
            self.finished.append(doc)
            if over:
                self.over_ratio.append((claim.shard, code))
        self.shard_done()
        self.progress()
        self.scheduler.wake.set()
        print(
            f"steps.infer: lane {p.lane}: {claim.shard} (generation {claim.generation}, {claim.body['reason']}): "
            f"{doc['processed']} processed ({doc['resumed']} resumed), {failed} failed",
            file=sys.stderr,
            flush=True,
        )


def unresolved(queue: WorkQueue, over_ratio: list[tuple[str, int]]) -> list[tuple[str, int]]:
    """The shards over --max-failure-ratio that still need this lane's exit code: one marked failed
    (transient, exit 1) that another lane has finished meanwhile needs no retry of this pod.
    Shards still open keep exit 1, so Argo retries the pod and its retry resumes them.
    """
    retried = [shard for shard, code in over_ratio if code == 1]
    states = queue.scan(retried) if retried else {}
    return [(s, c) for s, c in over_ratio if not (c == 1 and s in states and states[s].finished)]


def run_lane(params: InferParams) -> int:
    started = time.perf_counter()
    storage = wiring.storage_options(params)
    run_store = open_store(params.run_uri, max_pool_connections=wiring.pool_size(params) + 4, **storage)
    # Read first, so a --run-uri that ingest never wrote is refused before the probe writes into it.
    index = read_index(run_store)
    # Before the model loads: a server that ignores If-None-Match must be refused, never used.
    probe_conditional_writes(run_store, f"{runlayout.QUEUE_DIR}/probe")

    model = wiring.warm_model(params)
    stores = wiring.item_stores(params)
    outputs = stores[0]

    queue = WorkQueue(run_store, lane=params.lane, lanes=params.lanes, attempt=params.attempt, ttl=params.claim_ttl)
    lane = Lane(params, run_store, outputs, queue, index)
    lane.model_kind, lane.providers = model.spec.postprocess.kind, list(model.providers)
    run_name = params.run_uri.rstrip("/").rsplit("/", 1)[-1]
    metrics = Metrics(f"lane-{params.lane}", model.providers, run=run_name)

    def record(result: ItemResult) -> None:
        metrics.record(result)
        lane.record(result)

    def make(shard: str = "lane", resume_after: datetime | None = None) -> Pipeline:
        return wiring.pipeline(
            params,
            model,
            stores,
            on_result=record,
            on_batch=metrics.record_batch,
            shard=shard,
            resume_after=resume_after,
        )

    startup = time.perf_counter() - started
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
    queue.start_heartbeats()
    try:
        if params.output_layout == "per-shard":
            item_requests = lane.run_per_shard(make)
        else:
            # One stream across shards: the next shard's downloads overlap this one's tail.
            pipeline = make()
            # The lane books every result to its shard; the pipeline's own list would grow with
            # every image the lane ever processes, so it is emptied as shards finish.
            lane.shard_done = pipeline.results.clear
            pipeline.run(lane.items())
            item_requests = pipeline.requests
    finally:
        queue.stop_heartbeats()
    metrics.record_requests(item_requests)
    wall = time.perf_counter() - t0
    if lane.error is not None:
        raise lane.error

    processed = sum(d["processed"] for d in lane.finished)
    failed = sum(d["failed"] for d in lane.finished)
    now = sum(d["processed_now"] for d in lane.finished)
    metrics.ips.set(round(now / wall, 3) if wall > 0 else 0.0)
    metrics.seconds.set(time.perf_counter() - started)  # the lane's whole life, model load included
    write_outputs(
        params.outputs_dir, {"processed": str(processed), "failed": str(failed), "shards": str(len(lane.finished))}
    )
    if params.pushgateway:
        metrics.push(params.pushgateway)
    requests = request_counts()
    lane_doc = {
        "lane": params.lane,
        "lanes": params.lanes,
        "attempt": params.attempt,
        "host": queue.host,
        "token": queue.token,
        "startup_seconds": round(startup, 4),
        "wall_seconds": round(wall, 4),
        "shards": len(lane.finished),
        "processed": processed,
        "processed_now": now,
        "failed": failed,
        "takeovers": lane.scheduler.takeovers,
        "requests": requests,
    }
    run_store.put_bytes(
        f"{runlayout.LANES_DIR}/lane-{params.lane:04d}-a{params.attempt}-{queue.token[:8]}.json",
        json.dumps(lane_doc).encode(),
        content_type="application/json",
    )
    print(
        f"steps.infer: lane {params.lane}/{params.lanes}: {len(lane.finished)} shards, {processed} processed, "
        f"{failed} failed, {now / wall if wall > 0 else 0:.1f} images/s after {startup:.2f}s startup; "
        f"{lane.scheduler.takeovers} takeovers; requests {requests}",
        file=sys.stderr,
    )
    over_ratio = unresolved(queue, lane.over_ratio)
    if over_ratio:
        shard, _ = over_ratio[0]
        print(
            f"steps.infer: error: {len(over_ratio)} shards over --max-failure-ratio={params.max_failure_ratio} "
            f"(first: {shard}; see {params.run_uri.rstrip('/')}/{runlayout.METRICS_DIR}/{shard}.json)",
            file=sys.stderr,
        )
        return 1 if any(code == 1 for _, code in over_ratio) else 2
    return 0
