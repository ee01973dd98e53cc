"""`python -m tests.steps.infer.oom_child rlimit|arena|pipeline DIR`: real ONNX Runtime sessions that
run out of memory at a large batch but not at a small one; print one JSON line per case.

rlimit, arena: batches through run_shrinking; each line has the batch sizes tried, whether the
outputs are right, and the errors. pipeline: the infer Pipeline on a segmentation model, images
in the file store under DIR; the line has the batch sizes run and each item's status.

Its own process, because the limits are process-wide: `rlimit` and `pipeline` cap the address
space (RLIMIT_AS) so that malloc under ORT's default CPU arena fails, as cudaMalloc does on a full
GPU (run it with MALLOC_ARENA_MAX=1: glibc reserves 64 MiB of address space per thread arena);
`arena` registers a shared CPU arena of 4 MiB (OrtArenaCfg max_mem), as gpu_mem_limit caps CUDA's.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

from steps.common.storage import open_store
from steps.infer.model import _options, load_model
from steps.infer.model_retry import run_shrinking
from steps.infer.pipeline import Item, Pipeline, PipelineOptions
from testkit import onnx_models as zoo

_MIB = 1 << 20


def _outer_product_model() -> bytes:
    """y[n, i] = x[n, i] * sum(x[n]), through an [n, w, w] intermediate: 4·w² bytes per item."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "w"])
    axis1 = helper.make_tensor("axis1", TensorProto.INT64, [1], [1])
    axis2 = helper.make_tensor("axis2", TensorProto.INT64, [1], [2])
    nodes = [
        helper.make_node("Unsqueeze", ["x", "axis2"], ["column"]),
        helper.make_node("Unsqueeze", ["x", "axis1"], ["row"]),
        helper.make_node("Mul", ["column", "row"], ["outer"]),
        helper.make_node("ReduceSum", ["outer", "axis2"], ["y"], keepdims=0),
    ]
    graph = helper.make_graph(nodes, "outer", [x], [y], [axis1, axis2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def _session(mode: str) -> ort.InferenceSession:
    options = _options(1)  # the infer step's own session options
    options.log_severity_level = 4  # ORT logs each failed kernel; the errors come back as exceptions
    if mode == "arena":
        info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
        ort.create_and_register_allocator(info, ort.OrtArenaCfg({"max_mem": 4 * _MIB, "arena_extend_strategy": 1}))
        options.add_session_config_entry("session.use_env_allocators", "1")
    return ort.InferenceSession(_outer_product_model(), options, providers=["CPUExecutionProvider"])


def _case(session: ort.InferenceSession, batch: np.ndarray) -> dict:
    sizes: list[int] = []

    def run(part: np.ndarray) -> np.ndarray:
        sizes.append(len(part))
        return session.run(None, {"x": part})[0]

    results = run_shrinking(run, batch)
    outputs = [r for r in results if not isinstance(r, Exception)]
    expected = [row * row.sum() for row in batch]
    right = len(outputs) == len(batch) and all(np.allclose(o, e) for o, e in zip(outputs, expected, strict=True))
    return {"sizes": sizes, "right": right, "errors": [str(r) for r in results if isinstance(r, Exception)]}


def _limit_address_space(headroom: int) -> None:
    pages = int(Path("/proc/self/statm").read_text().split()[0])
    resource.setrlimit(resource.RLIMIT_AS, (pages * resource.getpagesize() + headroom, resource.RLIM_INFINITY))


def _wide_segmenter() -> bytes:
    """zoo.blob_segmenter's output, plus 0 x a [N, 1, H, W, W] outer product: 4·H·W² bytes per image."""
    model = onnx.load_from_string(zoo.blob_segmenter())
    graph = model.graph
    graph.output[0].name = "prob"
    graph.node[-1].output[0] = "prob_seg"
    zero = onnx.numpy_helper.from_array(np.array(0.0, np.float32), "zero")
    axis3 = helper.make_tensor("axis3", TensorProto.INT64, [1], [3])
    axis4 = helper.make_tensor("axis4", TensorProto.INT64, [1], [4])
    graph.initializer.extend([zero, axis3, axis4])
    graph.node.extend(
        [
            helper.make_node("Unsqueeze", ["gray", "axis4"], ["column"]),
            helper.make_node("Unsqueeze", ["gray", "axis3"], ["row"]),
            helper.make_node("Mul", ["column", "row"], ["outer"]),
            helper.make_node("ReduceSum", ["outer", "axis4"], ["wide"], keepdims=0),
            helper.make_node("Mul", ["wide", "zero"], ["nothing"]),
            helper.make_node("Add", ["prob_seg", "nothing"], ["prob"]),
        ]
    )
    onnx.checker.check_model(model)
    return model.SerializeToString()


def pipeline(directory: Path) -> None:
    """8 images of 160x160 in one batch: 16 MiB of intermediate each, 24 MiB of headroom."""
    (directory / "model.onnx").write_bytes(_wide_segmenter())
    store = open_store(f"file://{directory}/store")
    keys = [f"in/{i}.png" for i in range(8)]
    for i, key in enumerate(keys):
        store.put_bytes(key, zoo.blob_image((160, 160), [(40 + 5 * i, 60, 20)]))
    model = load_model(f"file://{directory}/model.onnx", threads=1)
    model.session.run(None, {model.input_name: np.zeros(model.feed(160, 160)[0], np.uint8)})  # warm
    sizes: list[int] = []
    run = model.run

    def recorded(batch: np.ndarray) -> np.ndarray:  # the real session's run, sizes noted
        sizes.append(len(batch))
        return run(batch)

    model.run = recorded  # type: ignore[method-assign]  # a spy around the real call, not a stand-in
    threading.stack_size(256 * 1024)  # the pipeline's threads, under the address-space cap
    _limit_address_space(24 * _MIB)
    inputs = open_store(f"file://{directory}/store/in")
    options = PipelineOptions(batch_size=8, prefetch_workers=1, upload_workers=1, queue_depth=8)
    pipe = Pipeline(model, (store, lambda uri: inputs), options)
    results = pipe.run([Item(key.removeprefix("in/"), inputs.uri) for key in keys])
    print(json.dumps({"sizes": sizes, "status": {r.key: r.status + r.reason[:300] for r in results}}), flush=True)


def main(mode: str) -> None:
    if mode == "pipeline":
        pipeline(Path(sys.argv[2]))
        return
    session = _session(mode)
    rng = np.random.default_rng(0)
    # rlimit: 4 MiB per item of width 1024, 64 MiB of headroom; arena: 256 KiB per item of width 256, 4 MiB.
    width, alone = (1024, 4096) if mode == "rlimit" else (256, 1024)
    session.run(None, {"x": np.ones((1, width), np.float32)})  # warm: ORT's own first-run allocations
    if mode == "rlimit":
        _limit_address_space(64 * _MIB)
    cases = {
        "fits_in_halves": rng.random((16, width), np.float32),
        "fits_alone": rng.random((1, width), np.float32),
        "too_big_alone": rng.random((2, alone), np.float32),
        "not_memory": rng.random((4, width)).astype(np.float64),  # the wrong dtype: no batch size helps
    }
    for name, batch in cases.items():
        print(json.dumps({"case": name, **_case(session, batch)}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
