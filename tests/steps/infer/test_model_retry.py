"""A batch out of memory is retried in halves on a real ONNX Runtime session (oom_child.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT
from steps.infer.model_retry import is_transient


def _child(*args: str) -> list[dict]:
    env = {**os.environ, "MALLOC_ARENA_MAX": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "tests.steps.infer.oom_child", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines()]


@pytest.mark.parametrize(
    ("mode", "needle"),
    [
        ("rlimit", "Failed to allocate memory for requested buffer of size"),  # malloc failed, as cudaMalloc does
        ("arena", "is smaller than requested bytes of"),  # the arena's limit, as CUDA's gpu_mem_limit
    ],
)
def test_model_retry_out_of_memory_batch_split_in_halves(mode, needle):
    cases = {case.pop("case"): case for case in _child(mode)}
    assert cases["fits_in_halves"] == {"sizes": [16, 8, 8], "right": True, "errors": []}
    assert cases["fits_alone"] == {"sizes": [1], "right": True, "errors": []}
    too_big = cases["too_big_alone"]
    assert too_big["sizes"] == [2, 1, 1] and len(too_big["errors"]) == 2
    assert all(needle in error for error in too_big["errors"])
    # Not a memory error: one try, every item failed with it.
    wrong = cases["not_memory"]
    assert wrong["sizes"] == [4] and len(wrong["errors"]) == 4 and "Unexpected input data type" in wrong["errors"][0]


def test_model_retry_pipeline_batch_out_of_memory_all_ok(tmp_path):
    (line,) = _child("pipeline", str(tmp_path))
    assert set(line["status"].values()) == {"ok"}, line["status"]
    sizes = line["sizes"]
    # Every batch of more than one image failed (16 MiB each, 24 MiB free) and was split down to singles.
    assert max(sizes) > 1 and sum(1 for n in sizes if n == 1) == len(line["status"])


@pytest.mark.parametrize(
    "text",
    [
        # CudaCall's format (onnxruntime/core/providers/cuda/cuda_call.cc), cudaErrorMemoryAllocation:
        "CUDA failure 2: out of memory ; GPU=0 ; hostname=node ; expr=cudaMalloc((void**)&p, size);",
        # TensorRT's allocator through the TRT EP's logger:
        "[TensorRT EP] defaultAllocator.cpp::allocate::63] Error Code 1: Cuda Runtime (out of memory)",
        "CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0 ; hostname=node ; expr=cublasCreate(&handle);",
        "CUDA failure 214: uncorrectable ECC error encountered ; GPU=0 ; hostname=n ; expr=cudaStreamSynchronize(s)",
        "CUDA failure 46: CUDA-capable device(s) is/are busy or unavailable ; GPU=0 ; hostname=node ; expr=...",
    ],
)
def test_model_retry_cuda_texts_transient(text):
    assert is_transient(RuntimeError(f"[ONNXRuntimeError] : 1 : FAIL : {text}"))


def test_model_retry_other_model_errors_permanent():
    assert not is_transient(RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions"))
