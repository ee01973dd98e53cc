"""Infer-step benchmark: our pipeline's overhead against ONNX Runtime alone, on the file store and
the S3 emulator, with and without ~30 ms per-request latency, against a naive per-image loop.

    uv run python benchmarks/infer.py --json

prints one JSON line. Every number comes from this run, measured side by side. The S3 server is
gofakes3 in its own process on 127.0.0.1 when installed (benchmarks/s3server.py), else moto (an
emulator, in this process); gofakes3 adds the latency itself on a second port (a sleep per request,
no CPU), moto gets an HTTP delay proxy in front of it (testkit/fault_proxy.py, in this process).
The pipeline runs as `python -m steps.infer` subprocesses, as Argo would run it; its throughput is
the metrics JSON's images_per_second (model load excluded, as for the raw number).
"""

from __future__ import annotations

import argparse
import atexit
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

RAW_CPU: list[float] = []  # images per CPU-second of the raw session, per round
DEFAULT_MODEL = "package://rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"
WORDS = "kiosk batch inference microscopy cell nucleus sample plate well field argo onnx runtime".split()


def make_images(count: int, size: int, unique: int = 16) -> list[bytes]:
    """Text lines and blobs on a light background with sensor-like noise (sigma 4 grey levels, so the
    PNGs do not compress to nothing); `unique` distinct images, cycled.
    """
    rng = np.random.default_rng(0)
    font = ImageFont.load_default(size=max(12, size // 20))
    distinct = []
    for _ in range(min(unique, count)):
        pixels = np.clip(rng.normal(225, 4, (size, size, 3)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        draw = ImageDraw.Draw(image)
        for line in range(4):
            text = " ".join(rng.choice(WORDS, 3))
            draw.text((size // 16, size // 10 + line * size // 5), text, fill=(0, 0, 0), font=font)
        for _ in range(3):
            cx, cy, r = [*rng.integers(size // 8, size - size // 8, 2).tolist(), int(rng.integers(8, size // 12))]
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(30, 120, 200))
        out = io.BytesIO()
        image.save(out, format="PNG")
        distinct.append(out.getvalue())
    return [distinct[i % len(distinct)] for i in range(count)]


def put_inputs(uri: str, endpoint: str, images: list[bytes], prefix: str) -> str:
    from steps.common.storage import open_store

    store = open_store(uri, s3_endpoint=endpoint, max_pool_connections=16)
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put_bytes(f"{prefix}/in/{i:06d}.png", images[i]), range(len(images))))
    lines = "".join(
        json.dumps({"key": f"{i:06d}.png", "input_uri": f"{uri}/{prefix}/in", "size": len(images[i])}) + "\n"
        for i in range(len(images))
    )
    store.put_bytes(f"{prefix}/run/shards/shard-00000.jsonl", lines.encode())
    return store.uri_for(f"{prefix}/run/shards/shard-00000.jsonl")


def run_step(
    shard: str, out: str, endpoint: str, args: argparse.Namespace, spec: str, model: str = "", extra: tuple = ()
) -> dict:
    command = [
        sys.executable,
        "-m",
        "steps.infer",
        f"--shard-uri={shard}",
        f"--model-uri={model or args.model}",
        f"--model-spec={spec}",
        f"--output-uri={out}",
        f"--s3-endpoint={endpoint}",
        f"--device={getattr(args, 'device', 'cpu')}",
        f"--batch-size={args.batch_size}",
        f"--outputs-dir={tempfile.mkdtemp()}",
        f"--prefetch-workers={args.prefetch_workers}",
        f"--upload-workers={args.upload_workers}",
        *args.step_arg,
        *extra,
    ]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"infer failed: {done.stderr.strip()}")
    from steps.common.storage import open_store, split_uri

    parent, _ = split_uri(shard.rsplit("/shards/", 1)[0] + "/metrics/shard-00000.json")
    return json.loads(open_store(parent, s3_endpoint=endpoint).get_bytes("shard-00000.json"))


def naive_worker(args: argparse.Namespace) -> None:
    """The naive loop on the S3 emulator (or file store), writing under `<prefix>/naive/`."""
    from benchmarks.naive import naive_loop
    from steps.common.storage import open_store
    from steps.infer.model import load_model, warm_up

    model = load_model(args.model, args.spec)
    warm_up(model, 64, 64)
    store = open_store(args.naive_store, s3_endpoint=args.naive_endpoint)
    keys = [f"{args.naive_prefix}/in/{i:06d}.png" for i in range(args.images)]

    def write(key: str, data: bytes) -> None:
        store.put_bytes(f"{args.naive_prefix}/naive/{key}", data)

    print(json.dumps({"ips": naive_loop(model, keys, store.get_bytes, write)}))


def raw_ort(
    args: argparse.Namespace,
    images: list[bytes],
    model_uri: str = "",
    cpu_per_image: list[float] | None = None,
    pixels: bool = False,
) -> tuple[float, list[str], str]:
    """Throughput of the session alone on pre-decoded, pre-batched tensors (the compute limit).

    By default the model as shipped, on tensors normalised beforehand: the compute the model itself
    needs. `pixels`: the session as the pipeline runs it, normalising uint8 pixels in its graph.
    """
    from steps.infer.model import load_model, warm_up
    from steps.infer.process import prepare

    model = load_model(model_uri or args.model, args.spec, pixels=pixels)
    tensors = [prepare(data, model.spec, pixels=pixels).tensor for data in images]
    batches = [np.stack(tensors[i : i + args.batch_size]) for i in range(0, len(tensors), args.batch_size)]
    warm_up(model, *(tensors[0].shape[:2] if pixels else tensors[0].shape[-2:]))
    model.run(batches[0])
    start, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        model.run(batch)
    shape = "x".join(map(str, tensors[0].shape))
    cpu = time.process_time() - cpu
    if cpu_per_image is None:
        RAW_CPU.append(len(tensors) / cpu)
    else:
        cpu_per_image.append(cpu / len(tensors))
    return len(tensors) / (time.perf_counter() - start), model.providers, shape


class _Moto:
    """moto's ThreadedMotoServer, an S3 emulator in this process (the fallback)."""

    def __init__(self) -> None:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto logs every request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.server.start()
        host, port = self.server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"

    def close(self) -> None:
        self.server.stop()


def _close_once(server: object):
    closed = []

    def close() -> None:
        if not closed:
            closed.append(True)
            server.close()  # type: ignore[attr-defined]

    return close


def start_s3(name: str, latency_s: float = 0.0) -> tuple[object, str]:
    """(server with .endpoint and .close(), its name): gofakes3 when installed, else moto.
    gofakes3 also serves `slow_endpoint`, each request held `latency_s`.
    """
    from benchmarks import s3server

    binary = s3server.gofakes3_binary()
    if name == "auto":
        name = "gofakes3" if binary else "moto"
    if name == "moto":
        return _Moto(), "moto S3 emulator, in the benchmark process"
    if binary is None:
        raise SystemExit("gofakes3 is not installed: run bash .ci/install.d/25-gofakes3.sh (or --server moto)")
    return s3server.GoFakeS3Process(binary, latency_s=latency_s), s3server.DETAIL


def decode_ms_per_image(images: list[bytes], spec: object) -> float:
    """Single-threaded CPU ms to decode each image to pixels, as `prepare` decodes it (JPEG draft
    included), and nothing else: the floor of any per-image work.
    """
    from steps.infer.process import target_size

    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        for data in images:
            image = Image.open(io.BytesIO(data))
            image.draft("RGB", target_size(spec, *image.size))  # type: ignore[arg-type]
            image.load()
        best = min(best, (time.process_time() - start) / len(images) * 1000)
    return best


def server_cpu_seconds(server: object) -> float | None:
    """The S3 server process's CPU so far; None for moto, which runs in this process."""
    cpu = getattr(server, "cpu_seconds", None)
    return cpu() if cpu is not None else None


class GpuProxy:
    """What a GPU would see: the nearly free model (benchmarks/free_model.py) through the
    same pipeline, on the file store and on S3. The step's own CPU per image (process_time of the
    step process, so not the S3 server's) less the free model's own CPU per image, against decode
    alone on the same images.
    """

    def __init__(self, work: Path) -> None:
        from benchmarks import free_model

        self.uri = f"file://{free_model.write(work / 'free_ppocr_det.onnx')}"
        self.rounds: dict[str, list[float]] = {}

    def add(self, name: str, value: float) -> None:
        self.rounds.setdefault(name, []).append(round(value, 3))

    def run(self, args, images, file_uri: str, endpoint: str, round_: int, log, server: object = None) -> None:
        from benchmarks.stages import STAGES, stage_costs, table
        from steps.infer.model import load_model

        spec = load_model(self.uri, pixels=False).spec
        costs = stage_costs(self.uri, images, batch_size=args.batch_size)
        log(f"round {round_ + 1}: stages (single-threaded CPU ms/image) {table(costs)}")
        for stage in STAGES:
            self.add(f"stage_{stage}_ms", costs[stage])
        self.add("components_ms", costs["components_ms"])
        self.add("pillow_decode_ms_per_image", decode_ms_per_image(images, spec))
        # The floor is the cheaper of the two decoders (the pipeline's OpenCV one, or Pillow's).
        self.add("decode_ms_per_image", min(costs["decode"], self.rounds["pillow_decode_ms_per_image"][-1]))
        model_cpu: list[float] = []
        ips, _, _ = raw_ort(args, images, self.uri, model_cpu)
        self.add("raw_ort_ips", ips)
        self.add("model_cpu_ms_per_image", model_cpu[0] * 1000)
        raw_ort(args, images, self.uri, model_cpu, pixels=True)
        # On a GPU the normalisation in the graph runs on the device; here it is CPU inside ORT.
        self.add("normalise_in_graph_cpu_ms_per_image", (model_cpu[1] - model_cpu[0]) * 1000)
        configs = (
            ("file", file_uri, "", ()),
            ("s3", "s3://bench", endpoint, ()),
            ("s3_per_shard", "s3://bench", endpoint, ("--output-layout=per-shard",)),
        )
        for store, uri, ep, extra in configs:
            shard = put_inputs(uri, ep, images, f"free-{store}{round_}")
            server_cpu = server_cpu_seconds(server)
            metrics = run_step(shard, f"{uri}/free-{store}{round_}/out", ep, args, "", self.uri, extra)
            if ep and server_cpu is not None:
                used = server_cpu_seconds(server) - server_cpu  # type: ignore[operator]
                self.add(f"server_cpu_ms_per_image_{store}", used / metrics["processed_now"] * 1000)
            cpu_ms = metrics["cpu_seconds"] / metrics["processed_now"] * 1000
            self.add(f"pipeline_ips_{store}", metrics["images_per_second"])
            self.add(f"cpu_ms_per_image_{store}", cpu_ms - model_cpu[0] * 1000)
            for kind, count in metrics.get("requests", {}).items():
                self.add(f"{kind}_requests_per_image_{store}", count / metrics["processed_now"])
        log(f"round {round_ + 1}: gpu_proxy " + ", ".join(f"{k} {v[-1]}" for k, v in self.rounds.items()))

    def _server_share(self, stages: dict[str, float], decode_bound: float) -> dict:
        """Here the S3 server runs on the same cores: with its CPU per image added to the stages,
        the S3 runs' work-conserving limit, and the most their decode-bound ratio can be.
        """
        rounds = self.rounds.get("server_cpu_ms_per_image_s3")
        if not rounds:
            return {}
        server = float(np.median(rounds))
        limit = (os.cpu_count() or 1) / (sum(stages.values()) + server) * 1000
        return {
            "server_cpu_ms_per_image_s3": round(server, 3),
            "work_conserving_ips_s3": round(limit, 1),
            "throughput_vs_decode_bound_s3": round(max(self.rounds["pipeline_ips_s3"]) / decode_bound, 3),
            "throughput_vs_decode_bound_bound_s3": round(limit / decode_bound, 3),
        }

    def summary(self) -> dict:
        # CPU figures barely move under neighbours: medians. Throughput does: the best round.
        from benchmarks.stages import STAGES

        med = {k: float(np.median(v)) for k, v in self.rounds.items()}
        decode = med["decode_ms_per_image"]
        cores = os.cpu_count() or 1
        bound = cores / decode * 1000
        best_file = max(self.rounds["pipeline_ips_file"])
        stages = {stage: round(med[f"stage_{stage}_ms"], 3) for stage in STAGES}
        work_conserving = cores / sum(stages.values()) * 1000
        return {
            "model": self.uri.rsplit("/", 1)[-1],
            "decode_ms_per_image": round(decode, 3),
            "pillow_decode_ms_per_image": round(med["pillow_decode_ms_per_image"], 3),
            # Single-threaded CPU per image of each stage (medians of the rounds), and what they allow.
            "stages_ms": stages,
            "work_conserving_ips": round(work_conserving, 1),
            "throughput_vs_work_conserving": round(best_file / work_conserving, 3),
            "throughput_vs_work_conserving_s3": round(max(self.rounds["pipeline_ips_s3"]) / work_conserving, 3),
            # The stages' own CPU outside the model over decode: the floor under ratio_vs_decode.
            "stages_outside_model_vs_decode": round((sum(stages.values()) - stages["model"]) / decode, 3),
            "model_cpu_ms_per_image": round(med["model_cpu_ms_per_image"], 3),
            "cpu_ms_per_image": round(med["cpu_ms_per_image_file"], 3),
            "cpu_ms_per_image_s3": round(med["cpu_ms_per_image_s3"], 3),
            "cpu_ms_per_image_s3_per_shard": round(med["cpu_ms_per_image_s3_per_shard"], 3),
            "ratio_vs_decode": round(med["cpu_ms_per_image_file"] / decode, 3),
            "ratio_vs_decode_s3": round(med["cpu_ms_per_image_s3"] / decode, 3),
            "ratio_vs_decode_s3_per_shard": round(med["cpu_ms_per_image_s3_per_shard"] / decode, 3),
            # What stays on a GPU node's CPU: the same, less the normalisation the graph does on the device.
            "normalise_in_graph_cpu_ms_per_image": round(med["normalise_in_graph_cpu_ms_per_image"], 3),
            "ratio_vs_decode_host_only": round(
                (med["cpu_ms_per_image_file"] - med["normalise_in_graph_cpu_ms_per_image"]) / decode, 3
            ),
            "ratio_vs_decode_s3_host_only": round(
                (med["cpu_ms_per_image_s3"] - med["normalise_in_graph_cpu_ms_per_image"]) / decode, 3
            ),
            # S3 list prices: $0.005 per 1,000 PUTs, $0.0004 per 1,000 GETs (and HEADs).
            "request_usd_per_1k_images": {
                layout: round(
                    1000
                    * (
                        0.005 * med.get(f"put_requests_per_image_{k}", 0) / 1000
                        + 0.0004
                        * (med.get(f"get_requests_per_image_{k}", 0) + med.get(f"head_requests_per_image_{k}", 0))
                        / 1000
                    ),
                    5,
                )
                for layout, k in (("per-image", "s3"), ("per-shard", "s3_per_shard"))
            },
            "raw_ort_ips": round(max(self.rounds["raw_ort_ips"]), 3),
            "pipeline_ips": round(best_file, 3),
            "pipeline_ips_s3": round(max(self.rounds["pipeline_ips_s3"]), 3),
            "pipeline_ips_s3_per_shard": round(max(self.rounds["pipeline_ips_s3_per_shard"]), 3),
            "decode_bound_ips": round(bound, 3),
            "throughput_vs_decode_bound": round(best_file / bound, 3),
            # No schedule passes the work-conserving limit: the most either decode-bound ratio can be here.
            "throughput_vs_decode_bound_bound": round(work_conserving / bound, 3),
            **self._server_share(stages, bound),
            # On a GPU the in-graph normalisation runs on the device with the model: the host's share.
            "stages_outside_model_vs_decode_host": round(
                (sum(stages.values()) - stages["model"] - stages["normalise"]) / decode, 3
            ),
            # The part of it no code skips: read, decode, the components, the mask PNG, the writes.
            "components_ms": round(med["components_ms"], 3),
            "stages_floor_vs_decode_host": round(
                (sum(stages[s] for s in ("read", "decode", "encode", "write")) + med["components_ms"]) / decode, 3
            ),
            "rounds": self.rounds,
        }


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=512, help="image side in pixels (>= 512)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument(
        "--working-size", type=int, default=0, help="the model spec's resize max_side (0: the model's own spec)"
    )
    # Sized for 2 cores: more threads only add GIL contention (profiled: 8 prefetch threads spent 7x
    # longer per download than 2, for the same throughput).
    parser.add_argument("--prefetch-workers", type=int, default=4)
    parser.add_argument("--upload-workers", type=int, default=4)
    parser.add_argument("--latency-ms", type=float, default=30.0)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; each config keeps its best")
    parser.add_argument("--rss-factor", type=int, default=10, help="grow the image count this much for RSS")
    parser.add_argument(
        "--server",
        choices=("auto", "gofakes3", "moto"),
        default="auto",
        help="S3 server (auto: gofakes3 when .ci/install.d/25-gofakes3.sh built it, else moto)",
    )
    parser.add_argument(
        "--gpu-proxy", choices=("on", "off", "only"), default="on", help="the free-model section (only: skip the rest)"
    )
    parser.add_argument(
        "--step-arg", action="append", default=[], help="extra `python -m steps.infer` flag (repeatable), for A/B runs"
    )
    parser.add_argument("--naive-store", help=argparse.SUPPRESS)
    parser.add_argument("--naive-endpoint", default="", help=argparse.SUPPRESS)
    parser.add_argument("--naive-prefix", help=argparse.SUPPRESS)
    parser.add_argument("--spec", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.working_size and not args.spec:
        args.spec = json.dumps({"resize": {"mode": "max_side", "max_side": args.working_size, "multiple": 32}})
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


@dataclass
class Bench:
    """What every round shares (the S3 server, its delayed endpoint, the images), and what they measured.

    Neighbours share these cores, so each configuration runs once per round, the rounds interleave,
    and each keeps its best round: the least disturbed measurement of the same code.
    """

    args: argparse.Namespace
    work: Path
    images: list[bytes]
    server: object
    server_name: str
    #: The S3 endpoint with the added latency: gofakes3's second port, or moto's delay proxy.
    latency_url: str
    proxy: object | None = None  # the delay proxy, when moto needs one
    best: dict[str, float] = field(default_factory=dict)
    runs: dict[str, list[float]] = field(default_factory=dict)
    file_cpu: list[float] = field(default_factory=list)
    rss_small: float = 0.0
    providers: list[str] = field(default_factory=list)
    tensor_shape: str = ""

    @property
    def file_uri(self) -> str:
        return f"file://{self.work}/store"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint  # type: ignore[attr-defined]

    def keep(self, name: str, ips: float) -> None:
        self.runs.setdefault(name, []).append(round(ips, 3))
        self.best[name] = max(self.best.get(name, 0.0), ips)
        log(f"round {len(self.runs[name])}: {name} {ips:.2f} images/s")


def start(args: argparse.Namespace) -> Bench:
    from testkit.fault_proxy import FaultProxy

    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    work = Path(tempfile.mkdtemp(prefix="kiosk-bench-"))
    server, server_name = start_s3(args.server, args.latency_ms / 1000)
    # A failing round must not leave the S3 server process behind.
    atexit.register(_close_once(server))
    endpoint = server.endpoint  # type: ignore[attr-defined]
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/bench", method="PUT"), timeout=10).close()
    proxy = None
    latency_url = getattr(server, "slow_endpoint", "")
    if not latency_url:
        proxy = FaultProxy(endpoint).start()
        proxy.delay(args.latency_ms / 1000)
        latency_url = proxy.url
    images = make_images(args.images, args.size)
    log(f"{len(images)} images {args.size}x{args.size}, {sum(map(len, images)) / len(images) / 1024:.0f} KiB each")
    log(f"model {args.model} spec {args.spec or '(its own)'}; work dir {work}")
    return Bench(args, work, images, server, server_name, latency_url, proxy)


def real_model_round(bench: Bench, round_: int) -> None:
    """Raw ORT, the pipeline on the file store, on S3, on S3 with the added latency, the naive loop."""
    args, images, file_uri, endpoint = bench.args, bench.images, bench.file_uri, bench.endpoint
    ips, bench.providers, bench.tensor_shape = raw_ort(args, images)
    bench.keep("raw", ips)
    shard = put_inputs(file_uri, "", images, f"file{round_}")
    metrics = run_step(shard, f"{file_uri}/file{round_}/out", "", args, args.spec)
    bench.keep("file", metrics["images_per_second"])
    bench.file_cpu.append(metrics["processed_now"] / metrics["cpu_seconds"])
    bench.rss_small = max(bench.rss_small, metrics["peak_rss_mb"])
    shard = put_inputs("s3://bench", endpoint, images, f"s3-{round_}")
    bench.keep("s3", run_step(shard, f"s3://bench/s3-{round_}/out", endpoint, args, args.spec)["images_per_second"])
    shard = put_inputs("s3://bench", endpoint, images, f"lat{round_}")
    proxy_url = bench.latency_url
    bench.keep(
        "s3_latency", run_step(shard, f"s3://bench/lat{round_}/out", proxy_url, args, args.spec)["images_per_second"]
    )
    bench.keep("naive_latency", naive_round(args, proxy_url, round_))


def naive_round(args: argparse.Namespace, endpoint: str, round_: int) -> float:
    naive = subprocess.run(
        [
            sys.executable,
            __file__,
            f"--images={args.images}",
            f"--model={args.model}",
            f"--spec={args.spec}",
            "--naive-store=s3://bench",
            f"--naive-endpoint={endpoint}",
            f"--naive-prefix=lat{round_}",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    if naive.returncode != 0:
        raise SystemExit(f"naive loop failed: {naive.stderr.strip()}")
    return json.loads(naive.stdout.strip().splitlines()[-1])["ips"]


def raw_bound(bench: Bench, raw_ips: float) -> dict:
    """The most `ratio_vs_raw` can be on these cores: raw ORT's CPU per image plus what any pipeline
    must add and raw ORT does not (read, decode, normalise, the components, the mask PNG and the
    writes: benchmarks/stages.py's floor, on 16 of the images), over the cores, against raw ORT's rate.
    """
    from benchmarks.stages import stage_costs

    costs = stage_costs(bench.args.model, bench.images[:16], batch_size=bench.args.batch_size, repeats=1)
    floor = (costs["host_floor_ms"] + min(costs["normalise"], costs["normalise_host_ms"])) / 1000
    model_cpu = 1 / float(np.median(RAW_CPU))  # CPU-seconds per image, all of ORT's threads
    cores = os.cpu_count() or 1
    return {
        "raw_cpu_ms_per_image": round(model_cpu * 1000, 3),
        "floor_ms_per_image": round(floor * 1000, 3),
        "raw_cores_busy": round(model_cpu * raw_ips, 3),
        "ratio_vs_raw_bound": round(min(1.0, cores / (model_cpu + floor) / raw_ips), 3),
    }


def real_model_summary(bench: Bench) -> dict:
    args = bench.args
    many = bench.images * args.rss_factor
    big_shard = put_inputs(bench.file_uri, "", many, "large")
    big_run = run_step(big_shard, f"{bench.file_uri}/large/out", "", args, args.spec)
    log(f"pipeline file x{args.rss_factor}: {big_run['images_per_second']} images/s, {big_run['peak_rss_mb']} MB")
    raw, pipeline, pipeline_s3, pipeline_lat, naive_ips = (
        bench.best[k] for k in ("raw", "file", "s3", "s3_latency", "naive_latency")
    )
    return {
        "raw_ort_ips": round(raw, 3),
        "pipeline_ips": round(pipeline, 3),
        "ratio_vs_raw": round(pipeline / raw, 3),
        **raw_bound(bench, raw),
        "pipeline_ips_s3": round(pipeline_s3, 3),
        "ratio_vs_raw_s3": round(pipeline_s3 / raw, 3),
        "pipeline_ips_s3_latency": round(pipeline_lat, 3),
        "latency_hiding": round(pipeline_lat / pipeline_s3, 3),
        "naive_ips_latency": round(naive_ips, 3),
        "speedup_vs_naive": round(pipeline_lat / naive_ips, 3),
        "peak_rss_mb": bench.rss_small,
        "peak_rss_mb_10x": big_run["peak_rss_mb"],
        "rss_growth_10x": round(big_run["peak_rss_mb"] / bench.rss_small, 3),
        "images_10x": len(many),
        "model_input": bench.tensor_shape,
        "latency_ms_added": args.latency_ms,
        "latency_added_by": "the S3 server (gofakes3's second port)"
        if bench.proxy is None
        else "testkit/fault_proxy.py in the benchmark process",
        "model": args.model,
        "providers": bench.providers,
        "rounds": bench.runs,
        # Neighbours change wall-clock numbers from one second to the next; CPU time barely moves.
        # Images per CPU-second of the pipeline (all its threads) over that of the bare session:
        # the share of our CPU that goes to the model, i.e. 1 - our overhead.
        "cpu_ratio_vs_raw": round(float(np.median(bench.file_cpu)) / float(np.median(RAW_CPU)), 3),
    }


def main() -> None:
    args = parse_args()
    if args.naive_store:
        naive_worker(args)
        return
    bench = start(args)
    proxy_runs = GpuProxy(bench.work) if args.gpu_proxy != "off" else None
    for round_ in range(args.rounds):
        if proxy_runs is not None:
            proxy_runs.run(args, bench.images, bench.file_uri, bench.endpoint, round_, log, bench.server)
        if args.gpu_proxy != "only":
            real_model_round(bench, round_)
    result = real_model_summary(bench) if args.gpu_proxy != "only" else {}
    if bench.proxy is not None:
        bench.proxy.stop()  # type: ignore[attr-defined]
    if proxy_runs is not None:
        result["gpu_proxy"] = proxy_runs.summary()
    print(json.dumps({**result, **context(args, bench.images, bench.server_name)}))


def context(args: argparse.Namespace, images: list[bytes], server_name: str) -> dict:
    return {
        "images": args.images,
        "image_size": f"{args.size}x{args.size}",
        "image_kib": round(sum(map(len, images)) / len(images) / 1024, 1),
        "batch_size": args.batch_size,
        "workers": {"prefetch": args.prefetch_workers, "upload": args.upload_workers},
        "step_args": args.step_arg,
        "server": server_name,
        "cpu_count": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


if __name__ == "__main__":
    main()
