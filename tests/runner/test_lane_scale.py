"""Workflow size is O(parallelism): a 10,000-shard batch-inference run through `kiosk run` keeps its
status small and has parallelism + a constant nodes (tiny images, a nearly free model). The same run
on the real controller: tests/cluster/test_lane_scale.py.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT
from tests.fixtures import scale


@pytest.mark.slow
def test_ten_thousand_shards_keep_the_workflow_small(tmp_path):
    # Everything under the workdir: the runner gives each pod a private /tmp with only it mounted back.
    workdir = tmp_path / "kiosk"
    parameters = scale.seed(workdir)
    command = [sys.executable, "-m", "pipelines.cli", "run", "batch-inference", "-o", "json"]
    command += ["--workdir", str(workdir)]
    for name, value in parameters.items():
        command += ["-p", f"{name}={value}"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stderr[-3000:]
    print(scale.check(json.loads(done.stdout)))
