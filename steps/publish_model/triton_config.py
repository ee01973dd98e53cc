"""Derive a Triton `config.pbtxt` from an ONNX model's graph inputs and outputs.

The config is written out rather than left to Triton's auto-complete so that what serves is reviewed
in the repository and fails at publish time, not at server start, when the model cannot batch.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import onnx

# onnx.TensorProto element type -> Triton data type (model_config.proto DataType).
_TRITON_TYPES: dict[int, str] = {
    onnx.TensorProto.BOOL: "TYPE_BOOL",
    onnx.TensorProto.UINT8: "TYPE_UINT8",
    onnx.TensorProto.UINT16: "TYPE_UINT16",
    onnx.TensorProto.UINT32: "TYPE_UINT32",
    onnx.TensorProto.UINT64: "TYPE_UINT64",
    onnx.TensorProto.INT8: "TYPE_INT8",
    onnx.TensorProto.INT16: "TYPE_INT16",
    onnx.TensorProto.INT32: "TYPE_INT32",
    onnx.TensorProto.INT64: "TYPE_INT64",
    onnx.TensorProto.FLOAT16: "TYPE_FP16",
    onnx.TensorProto.FLOAT: "TYPE_FP32",
    onnx.TensorProto.DOUBLE: "TYPE_FP64",
    onnx.TensorProto.BFLOAT16: "TYPE_BF16",
    onnx.TensorProto.STRING: "TYPE_STRING",
}


class ModelConfigError(ValueError):
    """The ONNX model cannot be described by a Triton config with the requested settings."""


@dataclass(frozen=True)
class TensorSpec:
    name: str
    data_type: str
    dims: tuple[int, ...]  # -1 marks a dynamic dimension, as Triton expects


def _spec(value: onnx.ValueInfoProto, max_batch_size: int) -> TensorSpec:
    tensor = value.type.tensor_type
    if not value.type.HasField("tensor_type"):
        raise ModelConfigError(f"tensor {value.name!r}: only tensor inputs/outputs are supported")
    data_type = _TRITON_TYPES.get(tensor.elem_type)
    if data_type is None:
        name = onnx.TensorProto.DataType.Name(tensor.elem_type)
        raise ModelConfigError(f"tensor {value.name!r}: element type {name} has no Triton equivalent")
    if not tensor.HasField("shape"):
        raise ModelConfigError(f"tensor {value.name!r}: the model declares no shape")
    # dim_value is 0 for symbolic dims and some exporters write -1: both mean dynamic.
    dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in tensor.shape.dim)
    if max_batch_size > 0:
        if not dims or dims[0] != -1:
            raise ModelConfigError(
                f"tensor {value.name!r} has shape {list(dims)} with no dynamic leading batch dimension: "
                "publish with --max-batch-size=0"
            )
        dims = dims[1:]
    return TensorSpec(value.name, data_type, dims)


def tensor_specs(model: onnx.ModelProto, max_batch_size: int) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs as Triton sees them; dims exclude the batch dimension when batching."""
    # Older exporters list weights among graph inputs; they are not fed by clients.
    initializers = {init.name for init in model.graph.initializer}
    inputs = [_spec(v, max_batch_size) for v in model.graph.input if v.name not in initializers]
    outputs = [_spec(v, max_batch_size) for v in model.graph.output]
    if not inputs or not outputs:
        raise ModelConfigError("the model graph has no inputs or no outputs")
    return inputs, outputs


def _tensor_block(spec: TensorSpec) -> str:
    lines = [
        "  {",
        f"    name: {json.dumps(spec.name)}",
        f"    data_type: {spec.data_type}",
    ]
    if spec.dims:
        lines.append(f"    dims: [ {', '.join(str(d) for d in spec.dims)} ]")
    else:
        # Triton rejects empty dims; a per-item scalar is declared as [1] reshaped to a scalar.
        lines.append("    dims: [ 1 ]")
        lines.append("    reshape: { shape: [ ] }")
    lines.append("  }")
    return "\n".join(lines)


def render_config(model: onnx.ModelProto, name: str, max_batch_size: int) -> str:
    """The text of `config.pbtxt` for `model` published as `name`."""
    if max_batch_size < 0:
        raise ModelConfigError(f"max_batch_size must be >= 0, got {max_batch_size}")
    inputs, outputs = tensor_specs(model, max_batch_size)
    parts = [
        f"name: {json.dumps(name)}",
        'platform: "onnxruntime_onnx"',
        f"max_batch_size: {max_batch_size}",
        "input [\n" + ",\n".join(_tensor_block(s) for s in inputs) + "\n]",
        "output [\n" + ",\n".join(_tensor_block(s) for s in outputs) + "\n]",
    ]
    if max_batch_size > 0:
        # Without it every request runs alone and max_batch_size only bounds client-side batches.
        parts.append("dynamic_batching { }")
    return "\n".join(parts) + "\n"
