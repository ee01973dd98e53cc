"""Drive a benchmark sweep through the real steps as processes, the way the benchmark
WorkflowTemplate chains them: synth -> for each point: ingest -> infer (shards, `parallelism` at a
time) -> report -> benchmark. Used by the end-to-end test and, with bigger numbers, by hand:

    uv run python tests/steps/benchmark/bench_e2e.py /tmp/bench --images 24 --size 256 --sweep 2,12,2 4,12,2
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

MODEL = "package://rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"


def step(module: str, *flags: str, timeout: float = 300) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", module, *flags], capture_output=True, text=True, timeout=timeout)
    if result.returncode not in (0, 1):  # benchmark exits 1 on a regression: the caller decides
        raise RuntimeError(f"{module} exited {result.returncode}: {result.stderr.strip()}")
    return result


def sweep(
    root: Path,
    points: Sequence[tuple[int, int, int]],
    images: int,
    size: int,
    pushgateway: str = "",
    benchmark_flags: Sequence[str] = (),
) -> subprocess.CompletedProcess:
    bench = f"file://{root}/store/benchmark"
    outs = root / "outputs"
    step(
        "steps.synth",
        f"--output-uri={bench}/images",
        f"--count={images}",
        f"--width={size}",
        f"--height={size}",
        "--seed=0",
        f"--outputs-dir={outs}/synth",
    )
    for batch, shard, parallelism in points:
        name = f"bs{batch}-ss{shard}-p{parallelism}"
        run_uri, out_uri = f"{bench}/runs/{name}", f"{bench}/outputs/{name}"
        step(
            "steps.ingest",
            f"--input-uri={bench}/images",
            f"--output-uri={out_uri}",
            f"--run-uri={run_uri}",
            f"--shard-size={shard}",
            f"--outputs-dir={outs}/{name}/ingest",
        )
        shards = sorted((root / "store/benchmark/runs" / name / "shards").glob("shard-*.jsonl"))

        def infer(path: Path, batch: int = batch, out_uri: str = out_uri, name: str = name) -> None:
            step(
                "steps.infer",
                f"--shard-uri=file://{path}",
                f"--model-uri={MODEL}",
                f"--output-uri={out_uri}",
                "--device=cpu",
                f"--batch-size={batch}",
                "--ort-threads=1",
                f"--pushgateway={pushgateway}",
                f"--outputs-dir={outs}/{name}/{path.stem}",
            )

        with ThreadPoolExecutor(parallelism) as pool:  # Argo's `parallelism` on the fan-out
            list(pool.map(infer, shards))
        step("steps.report", f"--run-uri={run_uri}", f"--output-uri={out_uri}", f"--outputs-dir={outs}/{name}/report")
    return step(
        "steps.benchmark",
        f"--runs-uri={bench}/runs",
        f"--report-uri={bench}/report",
        f"--outputs-dir={outs}/benchmark",
        *benchmark_flags,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--images", type=int, default=24)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--sweep", nargs="+", default=["2,12,2", "4,12,2"], help="batch,shard,parallelism")
    parser.add_argument("--pushgateway", default="")
    args, rest = parser.parse_known_args()
    points = [tuple(int(v) for v in p.split(",")) for p in args.sweep]
    result = sweep(args.root, points, args.images, args.size, args.pushgateway, rest)
    print(result.stdout, result.stderr, sep="")


if __name__ == "__main__":
    main()
