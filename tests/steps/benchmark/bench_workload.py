"""A real, small inference workload that writes run directories in the shape the report step does.

The benchmark step's tests need run reports with realistic numbers. Instead of typing results, this
times PP-OCRv4 text detection (rapidocr's ONNX model, CPU) over synth images: download, decode,
infer and upload are measured per item, shards run `parallelism` at a time, and the run writes
`report/summary.json` and `metrics/shard-*.json` like the report/infer steps. Optionally it pushes
live metrics to a Pushgateway while it runs.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import onnxruntime as ort
from PIL import Image

from steps.common.storage import Store

MODEL = Path(__import__("rapidocr_onnxruntime").__file__).parent / "models" / "ch_PP-OCRv4_det_infer.onnx"


def session() -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # the CI machine is shared: one core per task
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(MODEL), options, providers=["CPUExecutionProvider"])


def decode(data: bytes) -> np.ndarray:
    """NCHW float32 input as rapidocr prepares it: sides rounded to multiples of 32, (x/255-0.5)/0.5."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    width, height = (max(32, round(s / 32) * 32) for s in image.size)
    if (width, height) != image.size:
        image = image.resize((width, height), Image.BILINEAR)
    array = np.asarray(image, dtype=np.float32)[:, :, ::-1]  # BGR, as PaddleOCR models are trained
    return ((array / 255.0 - 0.5) / 0.5).transpose(2, 0, 1)


@dataclass
class Pusher:
    """Samples this process (CPU %, RSS) and a processed-images counter and pushes them every 0.25 s."""

    gateway: str
    job: str = "kiosk-benchmark-test"
    #: Blocks until Prometheus returns a value for a query (PromStack.wait_for). When set, a run ends
    #: only once its final samples are scraped, so its window holds a known sample time.
    scraped: Callable[[str, float], None] | None = None
    pushed: list[dict[str, float]] = field(default_factory=list)
    processed: int = 0

    def __post_init__(self) -> None:
        import psutil
        from prometheus_client import CollectorRegistry, Gauge

        self._process = psutil.Process()
        self._process.cpu_percent()  # first call primes the counter
        self.registry = CollectorRegistry()
        self._util = Gauge("kiosk_test_accel_util_percent", "CPU % of the inference process", registry=self.registry)
        self._mem = Gauge("kiosk_test_accel_mem_mib", "RSS of the inference process, MiB", registry=self.registry)
        # The name steps.infer pushes: shard throughput so far.
        self._ips = Gauge("kiosk_infer_images_per_second", "Throughput so far", registry=self.registry)
        # Labelled by run, like a per-run grouping key would be: lets a query pick one run ($run).
        self._batch = Gauge("kiosk_test_batch_size", "Batch size of the run", ["run"], registry=self.registry)
        self._started = time.perf_counter()
        self._lock = threading.Lock()

    def start_run(self, run: str, batch_size: int) -> None:
        self._batch.labels(run).set(batch_size)

    def count(self, n: int) -> None:
        with self._lock:
            self.processed += n

    def push(self) -> None:
        from prometheus_client import push_to_gateway

        sample = {
            "util": self._process.cpu_percent(),
            "mem": self._process.memory_info().rss / 2**20,
            "images": float(self.processed),
            "ips": self.processed / (time.perf_counter() - self._started),
        }
        self._ips.set(sample["ips"])
        self._util.set(sample["util"])
        self._mem.set(sample["mem"])
        push_to_gateway(self.gateway, job=self.job, registry=self.registry, timeout=5)
        self.pushed.append(sample)

    def sample_while(self, stop: threading.Event) -> None:
        while not stop.wait(0.25):
            self.push()


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of the sweep: images per batch, images per shard, shards at a time."""

    batch_size: int
    shard_size: int
    parallelism: int


@dataclass(frozen=True, kw_only=True)
class RunStores:
    """Where a sweep point reads images and writes its run directory and outputs."""

    images: Store
    run: Store
    outputs: Store


def run_sweep_point(
    stores: RunStores,
    keys: list[str],
    model: ort.InferenceSession,
    point: SweepPoint,
    *,
    pusher: Pusher | None = None,
) -> dict:
    """Process `keys` like one batch-inference run and write its report; returns the summary."""
    shards = [keys[i : i + point.shard_size] for i in range(0, len(keys), point.shard_size)]
    workload = _Workload(stores, model, point.batch_size, pusher)
    run_name = stores.run.uri.rstrip("/").rsplit("/", 1)[-1]
    started = datetime.now(UTC)
    clock = time.perf_counter()
    with _live_metrics(pusher, run_name, point.batch_size):
        with ThreadPoolExecutor(max_workers=point.parallelism) as pool:
            latencies = [v for part in pool.map(workload.shard, range(len(shards)), shards) for v in part]
        wall = time.perf_counter() - clock
    p50, p95, p99 = np.percentile(latencies, [50, 95, 99])
    summary = {
        "run_uri": stores.run.uri,
        "processed": len(latencies),
        "failed": 0,
        "rejected": 0,
        "images_per_second": len(latencies) / wall,
        "wall_seconds": wall,
        "started_at": started.isoformat().replace("+00:00", "Z"),
        "finished_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "latency_ms": {"p50": p50, "p95": p95, "p99": p99},
        "stage_seconds": workload.stages,
        "providers": model.get_providers()[:1],
        "shards": len(shards),
        "batch_size": point.batch_size,
        "failures": [],
        "time_elapsed": wall,
        "num_jobs": len(shards),
    }
    stores.run.put_bytes("report/summary.json", json.dumps(summary, indent=2).encode())
    return summary


@contextmanager
def _live_metrics(pusher: Pusher | None, run_name: str, batch_size: int) -> Iterator[None]:
    """Push samples every 0.25 s while the run works, and its final values once it is done."""
    if pusher is None:
        yield
        return
    stop = threading.Event()
    sampler = threading.Thread(target=pusher.sample_while, args=(stop,), daemon=True)
    pusher.start_run(run_name, batch_size)
    pusher.push()
    sampler.start()
    try:
        yield
    finally:
        stop.set()
        sampler.join()
    pusher.push()  # the final values, after the last image
    if pusher.scraped:
        # A run of a few tenths of a second can end between two 1 s scrapes, and then its window
        # holds none of its own samples (no run label, no throughput yet). Like a pod whose metrics
        # are scraped before it exits, the run ends only after Prometheus holds its final values:
        # their scrape time is then inside [started, finished], whatever the load.
        pusher.scraped(f'kiosk_test_batch_size{{run="{run_name}"}}', batch_size)
        pusher.scraped("kiosk_infer_images_per_second", pusher.pushed[-1]["ips"])


class _Workload:
    """What each shard does: download, decode, infer and upload its images, timing each stage."""

    def __init__(self, stores: RunStores, model: ort.InferenceSession, batch_size: int, pusher: Pusher | None) -> None:
        self.stores, self.model, self.batch_size, self.pusher = stores, model, batch_size, pusher
        self.input_name = model.get_inputs()[0].name
        self.stages = dict.fromkeys(_STAGES, 0.0)
        self.lock = threading.Lock()

    def shard(self, index: int, shard_keys: list[str]) -> list[float]:
        latencies: list[float] = []
        spent, lines = dict.fromkeys(_STAGES, 0.0), []
        for start in range(0, len(shard_keys), self.batch_size):
            lines += self._batch(shard_keys[start : start + self.batch_size], spent, latencies)
        # The layout steps.infer writes: per-item lines in results/, the shard's aggregate in metrics/.
        metrics = {"shard": f"shard-{index:05d}", "processed": len(latencies), "failed": 0, "stage_seconds": spent}
        self.stores.run.put_bytes(f"results/shard-{index:05d}.jsonl", "".join(lines).encode())
        self.stores.run.put_bytes(f"metrics/shard-{index:05d}.json", json.dumps(metrics).encode())
        with self.lock:
            for name, value in spent.items():
                self.stages[name] += value
        return latencies

    def _batch(self, keys: list[str], spent: dict[str, float], latencies: list[float]) -> list[str]:
        """One batch; adds its stage times to `spent` and its latencies (ms), returns its result lines."""
        batch, begun, lines = [], [], []
        for key in keys:
            begun.append(time.perf_counter())
            data = self.stores.images.get_bytes(key)
            t1 = time.perf_counter()
            batch.append(decode(data))
            t2 = time.perf_counter()
            spent["download"] += t1 - begun[-1]
            spent["decode"] += t2 - t1
        t3 = time.perf_counter()
        probabilities = self.model.run(None, {self.input_name: np.stack(batch)})[0]
        spent["infer"] += time.perf_counter() - t3
        for key, probability, t0 in zip(keys, probabilities, begun, strict=True):
            t4 = time.perf_counter()
            text_fraction = float((probability[0] > 0.3).mean())
            self.stores.outputs.put_bytes(key + ".json", json.dumps({"text_fraction": text_fraction}).encode())
            t5 = time.perf_counter()
            spent["upload"] += t5 - t4
            latencies.append((t5 - t0) * 1000.0)
            lines.append(json.dumps({"key": key, "status": "ok", "latency_ms": latencies[-1]}) + "\n")
        if self.pusher:
            self.pusher.count(len(batch))
        return lines


_STAGES = ("download", "decode", "infer", "upload")
