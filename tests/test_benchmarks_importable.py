"""Benchmarks are run by hand and in issue notes, not by CI: guard that their imports still resolve.

Putting `tests/` itself on sys.path once made `steps` resolve to `tests/steps/` inside the
benchmarks, which only failed minutes into a run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT

BENCHMARKS = sorted((REPO_ROOT / "benchmarks").glob("*.py"))

PROBE = """
import importlib.util, json, runpy, sys
runpy.run_path(sys.argv[1], run_name="benchmark_probe")  # module level only: main() is not run
modules = ("steps", "steps.common.storage", "testkit.fault_proxy")
found = {name: (importlib.util.find_spec(name) or None) for name in modules}
print(json.dumps({name: spec.origin if spec else None for name, spec in found.items()}))
"""


@pytest.mark.parametrize("path", BENCHMARKS, ids=lambda p: p.name)
def test_benchmark_imports_resolve_to_the_repository(path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(path)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    origins = json.loads(done.stdout.strip().splitlines()[-1])
    assert origins["steps"] == str(REPO_ROOT / "steps" / "__init__.py")
    assert origins["steps.common.storage"] == str(REPO_ROOT / "steps" / "common" / "storage" / "__init__.py")
