"""`pipelines` stays light: importing every module of it pulls in no numeric or cloud library."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import REPO_ROOT

FORBIDDEN = ("onnxruntime", "pandas", "boto3", "numpy")

PROBE = """
import importlib, json, pkgutil, sys
import pipelines
names = sorted(m.name for m in pkgutil.walk_packages(pipelines.__path__, "pipelines."))
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "loaded": sorted(sys.modules)}))
"""


def test_pipelines_imports_no_heavy_library() -> None:
    # A fresh interpreter: this test process may already hold these libraries for other tests.
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert "pipelines.render" in report["modules"] and "pipelines.templates.batch_inference" in report["modules"]
    heavy = [m for m in report["loaded"] if m.split(".")[0] in FORBIDDEN]
    assert heavy == [], f"pipelines imports {sorted({m.split('.')[0] for m in heavy})}"
