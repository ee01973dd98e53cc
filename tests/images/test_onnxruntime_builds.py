"""The CPU and GPU builds of ONNX Runtime: both install the `onnxruntime` package, so
pyproject.toml declares them as conflicting `cpu` (default) and `gpu` groups at one version.

Each test works in a temporary copy of the project with its own venv (never this checkout's
.venv, which other tests use), runs the real `uv sync` switches a user would run, and imports
ONNX Runtime after each one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT

#: Run inside the copy's venv after each switch: a session must start and compute on the CPU with
#: either build (onnxruntime-gpu falls back to its CPU provider on a machine without CUDA).
CHECK = """
import json, numpy as np, onnxruntime as ort
from onnx import TensorProto, helper
graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g",
    [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]); model.ir_version = 8
session = ort.InferenceSession(model.SerializeToString(), ort.SessionOptions(), providers=["CPUExecutionProvider"])
y = session.run(None, {"x": np.array([-1.0, 2.0], np.float32)})[0].tolist()
import steps.infer.model  # the step's own import works too
print(json.dumps({"version": ort.__version__, "providers": ort.get_available_providers(), "y": y}))
"""

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="onnxruntime-gpu wheels are Linux/Windows only")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("ort-switch")
    for name in ("pyproject.toml", "uv.lock", "README.md"):
        shutil.copy(REPO_ROOT / name, copy / name)
    for package in ("pipelines", "steps"):
        shutil.copytree(REPO_ROOT / package, copy / package, ignore=shutil.ignore_patterns("__pycache__"))
    return copy


def uv(project: Path, *args: str) -> subprocess.CompletedProcess:
    binary = shutil.which("uv")
    assert binary, "uv is not on PATH"
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT")}
    return subprocess.run(
        [binary, *args], cwd=project, env=env, capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL
    )


def installed(project: Path) -> dict:
    import json

    done = subprocess.run(
        [str(project / ".venv" / "bin" / "python"), "-c", CHECK],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"ONNX Runtime broken after the switch: {done.stderr.strip()[-800:]}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def sync(project: Path, *args: str) -> dict:
    done = uv(project, "sync", "--frozen", "--no-dev", *args)
    assert done.returncode == 0, done.stderr
    return installed(project)


def test_switching_builds_always_leaves_a_working_onnxruntime(project: Path):
    cpu = sync(project)  # the default: the CPU build
    assert "CUDAExecutionProvider" not in cpu["providers"] and cpu["y"] == [0.0, 2.0]
    # The reproduction: --all-extras used to install onnxruntime-gpu over onnxruntime, and
    # the next plain sync left a package without SessionOptions.
    assert sync(project, "--all-extras") == cpu
    gpu = sync(project, "--no-group", "cpu", "--group", "gpu")
    assert "CUDAExecutionProvider" in gpu["providers"] and gpu["y"] == [0.0, 2.0]
    assert gpu["version"] == cpu["version"], "the CPU and GPU builds are locked at different versions"
    assert sync(project) == cpu  # and back
    assert sync(project, "--no-group", "cpu", "--group", "gpu") == gpu
    assert sync(project, "--all-extras") == cpu


@pytest.mark.parametrize("args", [["--group", "gpu"], ["--all-groups"]], ids=["gpu-beside-default", "all-groups"])
def test_installing_both_builds_is_refused_clearly(project: Path, args: list[str]):
    sync(project)
    done = uv(project, "sync", "--frozen", "--no-dev", *args)
    assert done.returncode != 0
    assert "`cpu`" in done.stderr and "`gpu`" in done.stderr and "incompatible" in done.stderr, done.stderr
    assert "CUDAExecutionProvider" not in installed(project)["providers"]  # refused before touching the venv
