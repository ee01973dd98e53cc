"""Normalisation inside the graph: wrap a model so that it takes uint8 NHWC pixels.

The host then hands over the decoded image as it comes out of Pillow (HWC uint8, RGB or L): no
float pass, no transpose and no channel flip on the CPU, and 4x fewer bytes copied host-to-device.
The prefix computes exactly what `process.to_tensor` does on the host:

    pixels (N,H,W,C uint8) -> [Gather C: BGR] -> [Transpose to NCHW] -> Cast float32
        -> Mul scale/std -> Sub mean/std -> [Cast float16] -> the model's original input

On a GPU these elementwise ops run on the device for almost nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from steps.infer.spec import ModelSpec

PREFIX = "kiosk_pixels"


def _dims(value_info: onnx.ValueInfoProto) -> list:
    return [
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in value_info.type.tensor_type.shape.dim
    ]


def pixel_input_model(model_bytes: bytes, spec: ModelSpec) -> tuple[bytes, str]:
    """(the wrapped model, its new input name). The model must have spec.input_name as a rank-4 input."""
    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    original = next((i for i in graph.input if i.name == spec.input_name), None)
    if original is None:
        raise ValueError(f"no graph input {spec.input_name!r}")
    dims = _dims(original)
    if len(dims) != 4:
        raise ValueError(f"input {spec.input_name!r} has rank {len(dims)}, want 4")
    n, h, w = (dims[0], dims[2], dims[3]) if spec.layout == "NCHW" else (dims[0], dims[1], dims[2])
    taken = {t for node in graph.node for t in (*node.input, *node.output)} | {i.name for i in graph.input}
    name = f"{PREFIX}_input"
    while name in taken:
        name += "_"
    prefix = _Prefix(current=name)
    _convert_pixels(prefix, spec)
    prefix.nodes[-1].output[0] = spec.input_name  # the last prefix node feeds the model's original input
    return _assemble(model, original, name, [n, h, w, spec.channels], prefix.nodes, prefix.consts), name


@dataclass
class _Prefix:
    """The nodes put in front of the model, each reading the previous one's output (`current`)."""

    current: str
    nodes: list[onnx.NodeProto] = field(default_factory=list)
    consts: list[onnx.TensorProto] = field(default_factory=list)

    def step(self, op: str, *extra_inputs: str, **attrs) -> None:
        out = f"{PREFIX}/{len(self.nodes)}_{op}"
        self.nodes.append(helper.make_node(op, [self.current, *extra_inputs], [out], name=out, **attrs))
        self.current = out

    def const(self, label: str, array: np.ndarray) -> str:
        self.consts.append(numpy_helper.from_array(array, f"{PREFIX}/{label}"))
        return self.consts[-1].name


def _convert_pixels(prefix: _Prefix, spec: ModelSpec) -> None:
    """uint8 NHWC RGB pixels to what `spec` says the model takes: colour order, layout, dtype, scaling."""
    channels = spec.channels
    if spec.color == "BGR":
        prefix.step("Gather", prefix.const("bgr", np.array([2, 1, 0], np.int64)), axis=3)
    if spec.layout == "NCHW":
        prefix.step("Transpose", perm=[0, 3, 1, 2])
    if spec.dtype != "uint8":
        shape = (1, channels, 1, 1) if spec.layout == "NCHW" else (1, 1, 1, channels)
        std = np.broadcast_to(np.asarray(spec.std, np.float32), (channels,))
        mean = np.broadcast_to(np.asarray(spec.mean, np.float32), (channels,))
        prefix.step("Cast", to=TensorProto.FLOAT)
        prefix.step("Mul", prefix.const("gain", (np.float32(spec.scale) / std).reshape(shape).astype(np.float32)))
        prefix.step("Sub", prefix.const("offset", (mean / std).reshape(shape).astype(np.float32)))
        if spec.dtype == "float16":
            prefix.step("Cast", to=TensorProto.FLOAT16)
    if not prefix.nodes:  # an NHWC uint8 model of the same colour order takes the pixels as they are
        prefix.step("Identity")


def _assemble(model, original, name, dims, nodes, consts) -> bytes:
    graph = model.graph
    graph.input.remove(original)
    graph.input.insert(0, helper.make_tensor_value_info(name, TensorProto.UINT8, dims))
    for node in reversed(nodes):
        graph.node.insert(0, node)
    graph.initializer.extend(consts)
    return model.SerializeToString()
