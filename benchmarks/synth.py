"""Synth-step benchmark: 256 images of 512x512 (the issue's target: a few seconds on 2 cores),
one rendering process against one per CPU, run as `python -m steps.synth` like Argo runs it.

    uv run python benchmarks/synth.py --json

prints one JSON line; every number comes from this run (process start-up included, as in a pod).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time


def timed(root: str, workers: int, count: int, size: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.synth",
            f"--output-uri=file://{root}/w{workers}/images",
            f"--count={count}",
            f"--width={size}",
            f"--height={size}",
            f"--workers={workers}",
            f"--outputs-dir={root}/w{workers}/out",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.add_argument("--count", type=int, default=256)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()
    cpus = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as root:
        one = timed(root, 1, args.count, args.size)
        many = timed(root, cpus, args.count, args.size)
    print(
        json.dumps(
            {
                "images": args.count,
                "size": args.size,
                "cpus": cpus,
                "seconds_1_worker": round(one, 3),
                "seconds_all_workers": round(many, 3),
                "speedup": round(one / many, 3),
                "images_per_second": round(args.count / many, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
