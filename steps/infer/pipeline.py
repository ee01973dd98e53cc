"""The infer pipeline: prefetch pool (download + decode) -> batcher -> ONNX Runtime -> upload pool
(post-process + write). Queues are bounded, so memory follows queue depth, not shard size.

ONNX Runtime runs on the calling thread; while it computes a batch, the prefetch threads fetch and
decode the next ones and the upload threads encode and write the previous ones.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from steps.common import cpus
from steps.common.images import ImageError
from steps.common.runlayout import mask_key, result_key
from steps.common.storage import NotFound, StorageError, Store
from steps.infer.model import LoadedModel
from steps.infer.model_retry import run_shrinking
from steps.infer.params import InferParams
from steps.infer.process import Prepared, postprocess, prepare, threshold_batch
from steps.infer.shard_output import ShardOutput, results_key

_END = object()
#: Batch buffers kept per item shape (max_side resizing gives one shape per aspect ratio).
_BUFFERED_SHAPES = 8


@dataclass(frozen=True)
class Item:
    key: str
    input_uri: str
    size: int = 0
    etag: str = ""


@dataclass
class ItemResult:
    key: str
    status: str  # ok | failed | resumed
    reason: str = ""
    latency_s: float = 0.0
    stages: dict[str, float] = field(default_factory=dict)
    outputs: list[str] = field(default_factory=list)
    #: A storage failure may pass on a retry; a bad image or a model error will not.
    transient: bool = False


@dataclass
class _InFlight:
    item: Item
    started: float
    prepared: Prepared | None = None
    stages: dict[str, float] = field(default_factory=dict)


def workers(params: InferParams) -> tuple[int, int]:
    """(prefetch, upload) threads: as given, or sized to the pod's CPUs (0).

    Decode, resize, components and encoding release the GIL (OpenCV), so the threads scale with the
    CPUs. Two prefetch threads per CPU keep each CPU decoding while the other waits on its GET; the
    floors keep small pods hiding storage latency as before (8 prefetch, 4 upload).
    """
    count = cpus.available()
    return params.prefetch_workers or max(8, 2 * count), params.upload_workers or max(4, count)


@dataclass(frozen=True, kw_only=True)
class PipelineOptions:
    """How a pipeline batches, how many threads feed and drain it, and how it writes."""

    batch_size: int = 8
    prefetch_workers: int = 4
    upload_workers: int = 4
    queue_depth: int = 32
    max_pixels: int = 0
    output_layout: str = "per-image"

    @classmethod
    def from_params(cls, params: InferParams) -> PipelineOptions:
        prefetch, upload = workers(params)
        return cls(
            batch_size=params.batch_size,
            prefetch_workers=prefetch,
            upload_workers=upload,
            queue_depth=params.queue_depth,
            max_pixels=params.max_pixels,
            output_layout=params.output_layout,
        )


class Pipeline:
    def __init__(
        self,
        model: LoadedModel,
        stores: tuple[Store, Callable[[str], Store]],
        options: PipelineOptions,
        *,
        shard: str = "shard",
        resume_after: datetime | None = None,
        on_result: Callable[[ItemResult], None] = lambda r: None,
        on_batch: Callable[[int, float], None] = lambda n, s: None,
    ) -> None:
        self.model = model
        self.outputs, self.inputs = stores
        self.batch_size = options.batch_size
        self.prefetch_workers = options.prefetch_workers
        self.upload_workers = options.upload_workers
        self.depth = max(options.queue_depth, options.batch_size)
        self.resume_after = resume_after
        self.max_pixels = options.max_pixels
        self.on_result = on_result
        self.on_batch = on_batch
        self.results: list[ItemResult] = []
        self.batches = 0
        self._lock = threading.Lock()
        self._buffers: dict[tuple, np.ndarray] = {}
        #: Storage requests this pipeline made for items (GET inputs, PUT outputs, HEAD on resume),
        #: for the metrics: S3 bills each one.
        self.requests = {"get": 0, "put": 0, "head": 0}
        self.per_shard = ShardOutput(self.outputs, shard) if options.output_layout == "per-shard" else None
        self._held: list[ItemResult] = []  # per-shard: ok items, finished once the shard is written

    # -- helpers ---------------------------------------------------------------------------------------
    def _finish(self, result: ItemResult) -> None:
        with self._lock:
            self.results.append(result)
        self.on_result(result)

    def _fail(self, flight: _InFlight, reason: str, *, transient: bool = False) -> None:
        self._finish(
            ItemResult(
                flight.item.key,
                "failed",
                reason,
                time.perf_counter() - flight.started,
                flight.stages,
                transient=transient,
            )
        )

    def _count(self, kind: str, n: int = 1) -> None:
        with self._lock:
            self.requests[kind] += n

    def _newer(self, key: str) -> bool:
        self._count("head")
        info = self.outputs.head(key)
        return info is not None and self.resume_after is not None and info.last_modified >= self.resume_after

    def _already_done(self, item: Item) -> bool:
        if self.resume_after is None or self.per_shard is not None:
            return False
        return self._newer(result_key(item.key))

    # -- stages ----------------------------------------------------------------------------------------
    def _prefetch(self, todo: queue.Queue, ready: queue.Queue) -> None:
        try:
            while (item := todo.get()) is not _END:
                flight = _InFlight(item, time.perf_counter())
                try:
                    if self._already_done(item):
                        self._finish(ItemResult(item.key, "resumed", outputs=[result_key(item.key)]))
                        continue
                    self._count("get")
                    data = self.inputs(item.input_uri).get_bytes(item.key)
                    t1 = time.perf_counter()
                    flight.stages["download"] = t1 - flight.started
                    flight.prepared = prepare(
                        data, self.model.spec, max_pixels=self.max_pixels, pixels=self.model.pixels
                    )
                    flight.stages["decode"] = time.perf_counter() - t1
                    del data
                except NotFound:
                    self._fail(flight, "input not found")
                    continue
                except ImageError as error:
                    self._fail(flight, str(error))
                    continue
                except StorageError as error:
                    self._fail(flight, f"download failed: {error}", transient=True)
                    continue
                except Exception as error:  # a bug must cost one item, not hang the shard
                    self._fail(flight, f"{type(error).__name__}: {error}")
                    continue
                ready.put(flight)
        finally:
            ready.put(_END)

    def _upload(self, done: queue.Queue) -> None:
        spec = self.model.spec
        while (job := done.get()) is not _END:
            flight, output = job
            item, prepared = flight.item, flight.prepared
            t0 = time.perf_counter()
            try:
                fields, png = postprocess(output, spec, prepared.width, prepared.height)
                written = []
                record = {
                    "key": item.key,
                    "input": self.inputs(item.input_uri).uri_for(item.key),
                    "etag": item.etag,
                    "model": self.model.uri,
                    "kind": spec.postprocess.kind,
                    "width": prepared.width,
                    "height": prepared.height,
                }
                if self.per_shard is not None:
                    record.update(fields)
                    self.per_shard.add(record, png)
                    flight.stages["upload"] = time.perf_counter() - t0
                    with self._lock:
                        self._held.append(ItemResult(item.key, "ok", "", flight.started, flight.stages))
                    continue
                if png is not None:
                    self._count("put")
                    self.outputs.put_bytes(mask_key(item.key), png, content_type="image/png")
                    written.append(mask_key(item.key))
                    record["mask"] = self.outputs.uri_for(mask_key(item.key))
                record.update(fields)
                # The result JSON goes last: a crash before it leaves the item to the next attempt.
                self._count("put")
                self.outputs.put_bytes(
                    result_key(item.key), json.dumps(record).encode(), content_type="application/json"
                )
                written.append(result_key(item.key))
            except StorageError as error:
                flight.stages["upload"] = time.perf_counter() - t0
                self._fail(flight, f"upload failed: {error}", transient=True)
                continue
            except Exception as error:
                flight.stages["upload"] = time.perf_counter() - t0
                self._fail(flight, f"post-processing failed: {type(error).__name__}: {error}")
                continue
            flight.stages["upload"] = time.perf_counter() - t0
            self._finish(ItemResult(item.key, "ok", "", time.perf_counter() - flight.started, flight.stages, written))

    def _infer(self, group: list[_InFlight], done: queue.Queue) -> None:
        t0 = time.perf_counter()
        try:
            # Out of device memory: retried in halves; each item gets its output or its error.
            outputs: list[np.ndarray | Exception] = run_shrinking(self.model.run, self._batch(group))
        except Exception as error:
            outputs = [error] * len(group)
        elapsed = time.perf_counter() - t0
        ok = [i for i, output in enumerate(outputs) if not isinstance(output, Exception)]
        arrays = [output for output in outputs if isinstance(output, np.ndarray)]
        if ok:
            self.batches += 1
            self.on_batch(len(group), elapsed)
        # One vectorised thresholding pass over the batch's maps; the upload threads do the rest.
        maps: list | None = None
        if ok:
            try:
                maps = threshold_batch(np.stack(arrays), self.model.spec)
            except Exception as error:
                for flight in group:
                    self._fail(flight, f"post-processing failed: {type(error).__name__}: {error}")
                return
        by_item = dict(zip(ok, maps if maps is not None else arrays, strict=True))
        for i, flight in enumerate(group):
            output = outputs[i]
            if isinstance(output, Exception):
                self._fail(flight, f"inference failed: {' '.join(str(output).split())[:200]}")
                continue
            flight.stages["infer"] = elapsed / len(group)
            flight.prepared.tensor = None  # type: ignore[union-attr]  # the batch holds a copy: free it now
            done.put((flight, by_item[i]))

    def _batch(self, group: list[_InFlight]) -> np.ndarray:
        """The group copied into a reused buffer for its item shape: no per-batch allocation (a fresh
        np.stack page-faults its whole size in each time). ORT has read the buffer when run()
        returns (CPU computes from it, CUDA copies it to the device), so the next batch can reuse it.
        """
        first = group[0].prepared.tensor  # type: ignore[union-attr]  # prepared before batched
        key = (first.shape, first.dtype.str)
        buffer = self._buffers.pop(key, None)
        if buffer is None or len(buffer) < len(group):
            buffer = np.empty((max(self.batch_size, len(group)), *first.shape), first.dtype)
        self._buffers[key] = buffer  # most recently used last
        while len(self._buffers) > _BUFFERED_SHAPES:
            del self._buffers[next(iter(self._buffers))]
        batch = buffer[: len(group)]
        for i, flight in enumerate(group):
            batch[i] = flight.prepared.tensor  # type: ignore[union-attr]  # prepared before batched
        return batch

    # -- driver ----------------------------------------------------------------------------------------
    def run(self, items: Iterable[Item]) -> list[ItemResult]:
        if (
            self.per_shard is not None
            and self.resume_after is not None
            and self._newer(results_key(self.per_shard.shard))
        ):
            for item in items:
                self._finish(ItemResult(item.key, "resumed", outputs=[results_key(self.per_shard.shard)]))
            return self.results
        self._stream(items)
        if self.per_shard is not None:
            self._write_shard()
        return self.results

    def _write_shard(self) -> None:
        """One PUT for the masks, one for the JSONL; a failure fails every held item (transient)."""
        if not self._held:
            return
        try:
            written = self.per_shard.write()  # type: ignore[union-attr]
            self._count("put", len(written))
        except StorageError as error:
            self._count("put")
            for held in self._held:
                self._finish(
                    ItemResult(held.key, "failed", f"upload failed: {error}", 0.0, held.stages, transient=True)
                )
            return
        now = time.perf_counter()
        for held in self._held:  # latency_s held the item's start until now
            self._finish(ItemResult(held.key, "ok", "", now - held.latency_s, held.stages, written))

    def _stream(self, items: Iterable[Item]) -> None:
        todo: queue.Queue = queue.Queue(self.depth)
        ready: queue.Queue = queue.Queue(self.depth)
        done: queue.Queue = queue.Queue(self.depth)

        def feed() -> None:
            for item in items:
                todo.put(item)
            for _ in range(self.prefetch_workers):
                todo.put(_END)

        # Workers start before the feeder: idle threads start fast, while a Thread.start() behind
        # busy workers waits for the GIL (measured: 1.8 s of a 5 s shard on 2 cores).
        uploaders = [
            threading.Thread(target=self._upload, args=(done,), name=f"upload-{i}", daemon=True)
            for i in range(self.upload_workers)
        ]
        threads = [
            threading.Thread(target=self._prefetch, args=(todo, ready), name=f"prefetch-{i}", daemon=True)
            for i in range(self.prefetch_workers)
        ]
        threads.append(threading.Thread(target=feed, name="feed", daemon=True))
        for thread in uploaders + threads:
            thread.start()
        self._infer_batches(ready, done)
        for _ in uploaders:
            done.put(_END)
        for thread in threads + uploaders:
            thread.join()

    def _infer_batches(self, ready: queue.Queue, done: queue.Queue) -> None:
        """Group prefetched items into batches and infer them, until every prefetch worker has ended.

        Items are grouped by tensor shape (a batch needs one shape). A partial group is flushed
        when the inputs stall, so the accelerator never idles waiting for a full batch, and the
        largest group is flushed when too many wait, so odd shapes cannot pile up.
        """
        pending: dict[tuple, list[_InFlight]] = {}
        waiting = 0
        open_workers = self.prefetch_workers
        while open_workers or waiting:
            try:
                flight = ready.get(timeout=0.05) if open_workers else None
            except queue.Empty:
                flight = None
            if flight is _END:
                open_workers -= 1
                continue
            if flight is not None:
                shape = flight.prepared.tensor.shape
                pending.setdefault(shape, []).append(flight)
                waiting += 1
                if len(pending[shape]) >= self.batch_size:
                    waiting -= len(group := pending.pop(shape))
                    self._infer(group, done)
                if waiting <= self.depth:
                    continue
            if waiting:
                waiting -= len(group := pending.pop(max(pending, key=lambda s: len(pending[s]))))
                self._infer(group, done)
