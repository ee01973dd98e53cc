"""A batch that fails for want of device memory is retried in halves, down to one image.

Only errors that a smaller batch can cure are retried: out of memory, and a device reported lost or
busy. Any other model error (a bad input shape, a broken graph) fails the batch as before. An image
that still fails on its own is failed for good: it does not fit, or the device is gone.

The texts matched, all lower-cased, and where ONNX Runtime (or CUDA under it) writes them:
- "failed to allocate memory for requested buffer of size": BFCArena::AllocateRawInternal
  (onnxruntime/core/framework/bfc_arena.cc) when the allocator under the arena fails: cudaMalloc on
  CUDA, malloc on CPU (the tests provoke it on CPU under RLIMIT_AS);
- "is smaller than requested bytes of": BFCArena::Extend ("Available memory of N is smaller than
  requested bytes of M"), when the arena's own limit is reached (the CUDA EP's gpu_mem_limit, an
  OrtArenaCfg max_mem; the tests provoke it on CPU with an arena of 4 MiB);
- "out of memory": cudaGetErrorString(cudaErrorMemoryAllocation), as CudaCall formats it
  ("CUDA failure 2: out of memory ; GPU=0 ...", onnxruntime/core/providers/cuda/cuda_call.cc), and
  TensorRT's "Cuda Error in allocate: 2 (out of memory)" / "Cuda Runtime (out of memory)"
  (https://github.com/microsoft/onnxruntime/issues/10770, https://github.com/NVIDIA/TensorRT/issues/2198);
- "cublas_status_alloc_failed", "cudnn_status_alloc_failed": cuBLAS/cuDNN workspace allocations
  (the status names CudaErrString returns in cuda_call.cc);
- "bad_alloc" / "bad allocation": std::bad_alloc from a kernel (libstdc++ / MSVC what());
- device lost: cudaGetErrorString of cudaErrorECCUncorrectable ("uncorrectable ECC error
  encountered"), cudaErrorDevicesUnavailable ("CUDA-capable device(s) is/are busy or unavailable")
  and cudaErrorLaunchFailure ("unspecified launch failure").
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_TRANSIENT = (
    "failed to allocate memory for requested buffer of size",
    "is smaller than requested bytes of",
    "out of memory",
    "cublas_status_alloc_failed",
    "cudnn_status_alloc_failed",
    "bad_alloc",
    "bad allocation",
    "uncorrectable ecc error encountered",
    "busy or unavailable",
    "unspecified launch failure",
)


def is_transient(error: BaseException) -> bool:
    """True when a smaller batch may succeed where this model error failed (module docstring)."""
    text = str(error).lower()
    return any(needle in text for needle in _TRANSIENT)


def run_shrinking(run: Callable[[np.ndarray], np.ndarray], batch: np.ndarray) -> list[np.ndarray | Exception]:
    """`run(batch)`, one output (or the error that failed it) per item of `batch`.

    On a transient error the batch is split in two and each half run the same way, so only the
    images that fail on their own get an error; any other error is every item's.
    """
    try:
        return list(run(batch))
    except Exception as error:
        if len(batch) == 1 or not is_transient(error):
            return [error] * len(batch)
    half = (len(batch) + 1) // 2
    return run_shrinking(run, batch[:half]) + run_shrinking(run, batch[half:])
