"""GPU benchmark: one short prepared run for a machine with an NVIDIA GPU.

    uv sync --no-group cpu --group gpu          # onnxruntime-gpu (see docs/operations.md, "Container images")
    uv run python benchmarks/gpu.py --json      # a few minutes; --skip-tensorrt to skip engine builds
    uv sync                                     # back to the CPU build

For the real model (PP-OCRv4 det) and the nearly free one (benchmarks/free_model.py), side by side:
- raw CUDA and TensorRT throughput: the session alone on pre-decoded, pre-batched float tensors
  from host memory (the compute limit, host-to-device copy included), and CUDA with a CUDA graph
  (fixed shapes, IO binding to fixed device buffers) for the free model;
- the pipeline (`python -m steps.infer --device=cuda|tensorrt` on the file store) against them;
- GPU utilisation while the pipeline runs (nvidia-smi, sampled every 0.2 s);
- ORT session start time for TensorRT with an empty cache and with the cache the first start
  wrote (and for CUDA).
Prints one JSON line. `--device cpu` runs the same script on the CPU (a smoke test of the script
itself on machines without a GPU; its figures mean nothing for a GPU).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks import free_model  # noqa: E402
from benchmarks.infer import DEFAULT_MODEL, make_images, put_inputs, run_step  # noqa: E402

CPU, CUDA, TRT = "CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"


def gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 and out.stdout.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return ""


class Utilisation:
    """Mean GPU utilisation (%) between start() and stop(), from nvidia-smi samples."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                out = subprocess.run(
                    ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                )
                if out.returncode == 0 and out.stdout.strip():
                    self.samples.append(float(out.stdout.split()[0]))
            except (OSError, subprocess.SubprocessError, ValueError):
                return
            self._stop.wait(0.2)

    def __enter__(self) -> Utilisation:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    @property
    def mean(self) -> float | None:
        return round(float(np.mean(self.samples)), 1) if self.samples else None


def providers(kind: str, cache_dir: str, cuda_graph: bool = False) -> list:
    cuda = (CUDA, {"cudnn_conv_algo_search": "HEURISTIC", **({"enable_cuda_graph": "1"} if cuda_graph else {})})
    if kind == "cpu":
        return [CPU]
    if kind == "cuda":
        return [cuda, CPU]
    trt = {
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache_dir,
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": cache_dir,
    }
    return [(TRT, trt), cuda, CPU]


def session(model: bytes, kind: str, cache_dir: str, cuda_graph: bool = False):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    start = time.perf_counter()
    made = ort.InferenceSession(model, options, providers=providers(kind, cache_dir, cuda_graph))
    return made, time.perf_counter() - start


def tensors(model_uri: str, images: list[bytes], batch: int) -> list[np.ndarray]:
    from steps.infer.model import load_model
    from steps.infer.process import prepare

    spec = load_model(model_uri, pixels=False).spec
    items = [prepare(data, spec).tensor for data in images]
    return [np.stack(items[i : i + batch]) for i in range(0, len(items) - batch + 1, batch)]


def raw(sess, batches: list[np.ndarray], repeat: int) -> float:
    """Images/s of session.run on host batches (host-to-device copy included)."""
    name = sess.get_inputs()[0].name
    sess.run(None, {name: batches[0]})
    start = time.perf_counter()
    for _ in range(repeat):
        for batch in batches:
            sess.run(None, {name: batch})
    return repeat * sum(map(len, batches)) / (time.perf_counter() - start)


def raw_cuda_graph(sess, batches: list[np.ndarray], repeat: int) -> float:
    """Images/s with a CUDA graph: inputs copied into one fixed device buffer, output bound once."""
    import onnxruntime as ort

    name, out_name = sess.get_inputs()[0].name, sess.get_outputs()[0].name
    device_in = ort.OrtValue.ortvalue_from_numpy(batches[0], "cuda", 0)
    shape = sess.run(None, {name: batches[0]})[0].shape
    device_out = ort.OrtValue.ortvalue_from_shape_and_type(shape, np.float32, "cuda", 0)
    binding = sess.io_binding()
    binding.bind_ortvalue_input(name, device_in)
    binding.bind_ortvalue_output(out_name, device_out)
    sess.run_with_iobinding(binding)  # the first run captures the graph
    start = time.perf_counter()
    for _ in range(repeat):
        for batch in batches:
            device_in.update_inplace(batch)
            sess.run_with_iobinding(binding)
            device_out.numpy()
    return repeat * sum(map(len, batches)) / (time.perf_counter() - start)


def pipeline(model_uri: str, device: str, images: list[bytes], args: argparse.Namespace, work: Path, tag: str):
    """(images/s, mean GPU utilisation) of `python -m steps.infer` on the file store."""
    uri = f"file://{work}/store"
    shard = put_inputs(uri, "", images, tag)
    step = argparse.Namespace(**{**vars(args), "device": device, "model": model_uri})
    with Utilisation() as util:
        metrics = run_step(shard, f"{uri}/{tag}/out", "", step, "", model_uri, (f"--trt-cache-dir={work}/trt-{tag}",))
    return metrics["images_per_second"], util.mean


def measure(name: str, model_uri: str, images: list[bytes], args: argparse.Namespace, work: Path) -> dict:
    from steps.common.storage import read_uri

    model = read_uri(model_uri)
    assert model is not None, model_uri
    batches = tensors(model_uri, images, args.batch_size)
    gpu = args.device != "cpu"
    kinds = ["cuda", "tensorrt"] if gpu and not args.skip_tensorrt else ["cuda" if gpu else "cpu"]
    out: dict = {"session_start_s": {}, "raw_ips": {}, "pipeline_ips": {}, "gpu_util_pct": {}}
    for kind in kinds:
        cache = str(work / f"cache-{name}-{kind}")
        sess, cold = session(model, kind, cache)
        out["raw_ips"][kind] = round(raw(sess, batches, args.repeat), 2)
        out["session_start_s"][kind] = round(cold, 3)
        out["providers_" + kind] = sess.get_providers()
        del sess
        if kind == "tensorrt":  # the same cache directory again: engines and timing cache reused
            sess, warm = session(model, kind, cache)
            out["session_start_s"]["tensorrt_cached"] = round(warm, 3)
            del sess
        ips, util = pipeline(model_uri, kind, images, args, work, f"{name}-{kind}")
        out["pipeline_ips"][kind] = ips
        out["gpu_util_pct"][kind] = util
        out.setdefault("ratio_vs_raw", {})[kind] = round(ips / out["raw_ips"][kind], 3)
    if gpu and name == "free":
        try:
            sess, _ = session(model, "cuda", "", cuda_graph=True)
            out["raw_ips"]["cuda_graph"] = round(raw_cuda_graph(sess, batches, args.repeat), 2)
        except Exception as error:  # report, do not lose the other figures
            out["raw_ips"]["cuda_graph"] = f"failed: {' '.join(str(error).split())[:200]}"
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=3, help="passes over the batches for the raw figures")
    parser.add_argument("--prefetch-workers", type=int, default=0, help="0: 2 per CPU core")
    parser.add_argument("--upload-workers", type=int, default=0, help="0: 1 per CPU core")
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--skip-tensorrt", action="store_true")
    parser.add_argument("--model", default=DEFAULT_MODEL, help="the real model")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    args.prefetch_workers = args.prefetch_workers or 2 * cores
    args.upload_workers = args.upload_workers or cores
    args.step_arg = []

    import onnxruntime as ort

    if args.device == "cuda" and CUDA not in ort.get_available_providers():
        raise SystemExit(
            "benchmarks/gpu.py: CUDA is not available in this onnxruntime "
            f"({ort.__version__}, providers {ort.get_available_providers()}): run `uv sync --no-group cpu --group gpu`"
        )
    work = Path(tempfile.mkdtemp(prefix="kiosk-gpu-bench-"))
    images = make_images(args.images, args.size)
    free_uri = f"file://{free_model.write(work / 'free_ppocr_det.onnx')}"
    result = {
        "gpu": gpu_name() or None,
        "device": args.device,
        "onnxruntime": ort.__version__,
        "cpu_count": cores,
        "images": args.images,
        "image_size": f"{args.size}x{args.size}",
        "batch_size": args.batch_size,
        "workers": {"prefetch": args.prefetch_workers, "upload": args.upload_workers},
        "free": measure("free", free_uri, images, args, work),
        "real": measure("real", args.model, images, args, work),
    }
    shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
