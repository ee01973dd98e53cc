"""A nearly free ONNX model with PP-OCRv4 det's interface, to see what a GPU would see.

    uv run python benchmarks/free_model.py /tmp/free.onnx

On a GPU the model costs almost nothing and everything around it is the cost. This model keeps
PP-OCRv4 det's contract (input `x`, NCHW float32, ImageNet mean/std over RGB, sides a multiple of
32, a 1xHxW text probability) and its spec in the `kiosk.spec` metadata, so the pipeline does the
same decode, normalisation, batching, post-processing and writes; its compute is one 1x1 Conv:

    grey = sum_c x_c * std_c / 3 + mean(mean)     (undoes the normalisation: grey in [0, 1])
    text = 1 - grey                               (dark strokes on light paper -> high)

so text and dark blobs on the benchmark's light pages give a text-like probability map, and the
post-processing finds real components in it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from steps.infer.spec import BUILTIN  # noqa: E402

PPOCR_DET = "ch_PP-OCRv4_det_infer.onnx"


def build() -> bytes:
    spec = BUILTIN[PPOCR_DET]
    std = np.asarray(spec["std"], np.float32)
    weights = numpy_helper.from_array((std / 3).reshape(1, 3, 1, 1), "to_grey")
    bias = numpy_helper.from_array(np.array([np.mean(spec["mean"])], np.float32), "grey_bias")
    one = numpy_helper.from_array(np.array(1.0, np.float32), "one")
    nodes = [
        helper.make_node("Conv", ["x", "to_grey", "grey_bias"], ["grey"]),
        helper.make_node("Sub", ["one", "grey"], ["text"]),
    ]
    graph = helper.make_graph(
        nodes,
        "free_ppocr_det",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])],
        [helper.make_tensor_value_info("text", TensorProto.FLOAT, ["N", 1, "H", "W"])],
        initializer=[weights, bias, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="kiosk-benchmarks")
    model.ir_version = 8
    helper.set_model_props(model, {"kiosk.spec": json.dumps({**spec, "output_name": "text"})})
    onnx.checker.check_model(model)
    return model.SerializeToString()


def write(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(build())
    return path


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: free_model.py OUTPUT.onnx")
    print(write(Path(sys.argv[1])))
