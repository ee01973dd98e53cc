"""Normalisation inside the graph (steps/infer/normalise.py) computes what the host path computes.

Each case wraps an Identity model of a given layout and dtype, feeds it uint8 HWC pixels, and
compares the tensor the original model receives with `process.to_tensor` (itself checked against
the formula in test_process.py).
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from steps.infer.normalise import pixel_input_model
from steps.infer.process import to_tensor
from steps.infer.spec import ModelSpec

ONNX_TYPES = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8}


def identity(layout: str, dtype: str, channels: int) -> bytes:
    shape = ["N", channels, "H", "W"] if layout == "NCHW" else ["N", "H", "W", channels]
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "identity",
        [helper.make_tensor_value_info("x", ONNX_TYPES[dtype], shape)],
        [helper.make_tensor_value_info("y", ONNX_TYPES[dtype], shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


@pytest.mark.parametrize("layout", ["NCHW", "NHWC"])
@pytest.mark.parametrize("dtype", ["float32", "float16", "uint8"])
@pytest.mark.parametrize("color", ["RGB", "BGR", "L"])
def test_wrapped_model_sees_the_host_normalised_tensor(layout, dtype, color):
    channels = 1 if color == "L" else 3
    spec = ModelSpec.model_validate(
        {
            "input_name": "x",
            "output_name": "y",
            "layout": layout,
            "dtype": dtype,
            "color": color,
            "mean": [0.485, 0.456, 0.406][:channels],
            "std": [0.229, 0.224, 0.225][:channels],
            "postprocess": {"kind": "segmentation"},
        }
    )
    wrapped, name = pixel_input_model(identity(layout, dtype, channels), spec)
    assert name != "x"
    session = ort.InferenceSession(wrapped, providers=["CPUExecutionProvider"])
    (feed,) = session.get_inputs()
    assert feed.name == name and feed.type == "tensor(uint8)" and feed.shape[3] == channels
    rng = np.random.default_rng(len(layout + dtype + color))
    pixels = rng.integers(0, 256, (2, 7, 5, channels), dtype=np.uint8)
    got = session.run(None, {name: pixels})[0]
    want = np.stack([to_tensor(p if channels == 3 else p[:, :, 0], spec) for p in pixels])
    assert got.dtype == want.dtype and got.shape == want.shape
    tolerance = 2e-3 if dtype == "float16" else 1e-5
    np.testing.assert_allclose(got.astype(np.float32), want.astype(np.float32), rtol=tolerance, atol=tolerance)


def test_a_model_without_the_spec_input_is_refused():
    spec = ModelSpec.model_validate({"input_name": "nope", "postprocess": {"kind": "segmentation"}})
    with pytest.raises(ValueError, match="no graph input 'nope'"):
        pixel_input_model(identity("NCHW", "float32", 3), spec)
