"""Runner overhead: ms per task on a 100-task fan-out of `true` (target < 150 ms per task).

`python benchmarks/runner.py --json` prints one JSON line. Wall time is divided by the task count,
so it is the amortised cost of a task including process start, isolation and bookkeeping; the raw
cost of starting `true` the same number of times, one by one, is reported next to it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipelines.runner import api, isolation

MANIFEST = """
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {{generateName: bench-}}
spec:
  entrypoint: main
  templates:
  - name: main
    dag:
      tasks:
      - {{name: t, template: nop, withSequence: {{count: "{tasks}"}}}}
  - name: nop
    container: {{image: busybox, command: ["true"]}}
"""


def measure(tasks: int) -> dict[str, float | int | str]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.yaml"
        path.write_text(MANIFEST.format(tasks=tasks))
        method = isolation.method()
        start = time.perf_counter()
        workflow = api.run(str(path), env=None, workdir=Path(tmp) / "wd")
        wall = time.perf_counter() - start
        if workflow["status"]["phase"] != "Succeeded":
            raise SystemExit(f"benchmark workflow {workflow['status']['phase']}: {workflow['status'].get('message')}")
        raw_start = time.perf_counter()
        for _ in range(tasks):
            subprocess.run(["true"], check=True)
        raw = time.perf_counter() - raw_start
    return {
        "benchmark": "runner-fanout",
        "tasks": tasks,
        "isolation": method,
        "wall_s": round(wall, 3),
        "ms_per_task": round(wall * 1000 / tasks, 2),
        "raw_true_ms_per_process": round(raw * 1000 / tasks, 2),
        "target_ms_per_task": 150,
        "ratio_to_target": round(wall * 1000 / tasks / 150, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    parser.add_argument("--tasks", type=int, default=100)
    args = parser.parse_args()
    result = measure(args.tasks)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")


if __name__ == "__main__":
    main()
