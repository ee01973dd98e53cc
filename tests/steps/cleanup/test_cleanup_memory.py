"""A 100k-object run stays in bounded memory: its peak is that of a 10k-object run (measured).

On the file store, to keep the suite fast: the objects are hard links (one inode per directory of
1000), which makes building the tree cheap while listing and deleting still walk 100k entries.
Each run is a fresh process and its peak RSS is compared (tracemalloc would be steadier but
makes the run 4x slower): with worker processes, the report's `peak_rss_mb`, which adds every
worker's own peak to the step's. The benchmark measures the same against an S3 server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT

PER_DIR = 1000
OLD = time.time() - 10 * 86_400


def build(root: Path, objects: int) -> None:
    for d in range(objects // PER_DIR):
        directory = root / "uploads" / f"{d:04d}"
        directory.mkdir(parents=True)
        first = directory / "0000"
        first.write_bytes(b"0123456789")
        os.utime(first, (OLD, OLD))
        for i in range(1, PER_DIR):
            os.link(first, directory / f"{i:04d}")
    # Siblings that must survive.
    (root / "uploads-archive").mkdir()
    (root / "uploads-archive" / "keep").write_bytes(b"k")
    os.utime(root / "uploads-archive" / "keep", (OLD, OLD))


# A fresh process per run, so that its peak RSS is that run's alone (ru_maxrss never goes down).
RUN = """
import json, resource, sys
from steps.cleanup.main import execute
from steps.cleanup.params import CleanupParams
params = CleanupParams(
    store=sys.argv[1], prefix=["uploads"], older_than="3d", dry_run=False, max_deletes=10**6, processes=int(sys.argv[2])
)
report = execute(params).to_dict()
print(json.dumps({"peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "report": report}))
"""


def peak_of_run(root: Path, processes: int) -> tuple[int, dict]:
    result = subprocess.run(
        [sys.executable, "-c", RUN, f"file://{root}", str(processes)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=300,
        check=True,
    )
    data = json.loads(result.stdout.strip().splitlines()[-1])
    report = data["report"]
    assert report["processes"] == processes, report
    if processes == 1:  # no workers: the report's figure is this process's own peak
        assert abs(report["peak_rss_mb"] - data["peak_rss_kib"] / 1024) < 0.2, report
    return int(report["peak_rss_mb"] * 2**20), report


@pytest.mark.parametrize("processes", [1, 2])
def test_memory_is_flat_from_10k_to_100k_objects(tmp_path: Path, processes: int) -> None:
    small, big = tmp_path / "small", tmp_path / "big"
    build(small, 10_000)
    build(big, 100_000)
    peak_small, report_small = peak_of_run(small, processes)
    peak_big, report_big = peak_of_run(big, processes)
    print(f"{processes} processes, peak RSS: 10k objects {peak_small / 2**20:.1f} MiB, 100k {peak_big / 2**20:.1f} MiB")
    assert (report_small["deleted"], report_big["deleted"]) == (10_000, 100_000)
    assert report_big["bytes"] == 1_000_000 and report_big["exit_code"] == 0
    assert [p.name for p in big.iterdir()] == ["uploads-archive"]
    # Merely remembering the matched keys adds ~14 MiB at 100k (measured by doing so); the design
    # holds one page plus 2 x workers batches, whatever the bucket size.
    assert peak_big - peak_small < 6 * 2**20, (peak_small, peak_big)
