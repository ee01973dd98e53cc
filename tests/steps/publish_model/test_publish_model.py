"""The publish-model step: config.pbtxt derived from real ONNX models, and the files it writes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import onnxruntime
import pytest
from onnx import TensorProto, helper

from pipelines.tools import REPO_ROOT
from steps.publish_model.main import PublishError, main
from steps.publish_model.params import PublishModelParams
from steps.publish_model.triton_config import ModelConfigError, render_config, tensor_specs


def _rapidocr_models() -> list[Path]:
    import rapidocr_onnxruntime

    return sorted((Path(rapidocr_onnxruntime.__file__).parent / "models").glob("*.onnx"))


def _model(inputs, outputs, nodes, initializers=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _batched_classifier() -> onnx.ModelProto:
    """N x 4 float features -> N x 3 scores and N int64 labels; the weight also appears as an input."""
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3], [0.1] * 12)
    return _model(
        inputs=[
            helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3]),
        ],
        outputs=[
            helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("label", TensorProto.INT64, ["batch"]),
        ],
        nodes=[
            helper.make_node("MatMul", ["features", "w"], ["scores"]),
            helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
        ],
        initializers=[weight],
    )


def test_config_of_a_batched_model_drops_the_batch_dim_and_weights():
    model = _batched_classifier()
    onnx.checker.check_model(model)
    assert (
        render_config(model, "classifier", 16)
        == """\
name: "classifier"
platform: "onnxruntime_onnx"
max_batch_size: 16
input [
  {
    name: "features"
    data_type: TYPE_FP32
    dims: [ 4 ]
  }
]
output [
  {
    name: "scores"
    data_type: TYPE_FP32
    dims: [ 3 ]
  },
  {
    name: "label"
    data_type: TYPE_INT64
    dims: [ 1 ]
    reshape: { shape: [ ] }
  }
]
dynamic_batching { }
"""
    )


def test_config_without_batching_keeps_every_dim():
    model = _model(
        inputs=[helper.make_tensor_value_info("image", TensorProto.UINT8, [1, "h", "w", 3])],
        outputs=[helper.make_tensor_value_info("mask", TensorProto.BOOL, [1, "h", "w", 3])],
        nodes=[helper.make_node("Cast", ["image"], ["mask"], to=TensorProto.BOOL)],
    )
    assert (
        render_config(model, "masker", 0)
        == """\
name: "masker"
platform: "onnxruntime_onnx"
max_batch_size: 0
input [
  {
    name: "image"
    data_type: TYPE_UINT8
    dims: [ 1, -1, -1, 3 ]
  }
]
output [
  {
    name: "mask"
    data_type: TYPE_BOOL
    dims: [ 1, -1, -1, 3 ]
  }
]
"""
    )


def test_fixed_leading_dim_cannot_batch():
    model = _model(
        inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT16, [1, 8])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT16, [1, 8])],
        nodes=[helper.make_node("Relu", ["x"], ["y"])],
    )
    with pytest.raises(ModelConfigError, match=r"'x' has shape \[1, 8\].*--max-batch-size=0"):
        render_config(model, "m", 4)
    inputs, _ = tensor_specs(model, 0)
    assert (inputs[0].data_type, inputs[0].dims) == ("TYPE_FP16", (1, 8))


def test_element_type_without_triton_equivalent_is_rejected():
    model = _model(
        inputs=[helper.make_tensor_value_info("z", TensorProto.COMPLEX64, ["n", 2])],
        outputs=[helper.make_tensor_value_info("y", TensorProto.COMPLEX64, ["n", 2])],
        nodes=[helper.make_node("Identity", ["z"], ["y"])],
    )
    with pytest.raises(ModelConfigError, match="'z': element type COMPLEX64"):
        render_config(model, "m", 2)


def test_rapidocr_detector_config():
    det = next(p for p in _rapidocr_models() if p.name == "ch_PP-OCRv4_det_infer.onnx")
    assert (
        render_config(onnx.load(det), "ocr-det", 4)
        == """\
name: "ocr-det"
platform: "onnxruntime_onnx"
max_batch_size: 4
input [
  {
    name: "x"
    data_type: TYPE_FP32
    dims: [ 3, -1, -1 ]
  }
]
output [
  {
    name: "sigmoid_0.tmp_0"
    data_type: TYPE_FP32
    dims: [ 1, -1, -1 ]
  }
]
dynamic_batching { }
"""
    )


@pytest.mark.parametrize("path", _rapidocr_models(), ids=lambda p: p.name)
def test_derived_tensors_match_what_onnxruntime_sees(path: Path):
    """Cross-check against an independent reader of the same model: ONNX Runtime's own session."""
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    inputs, outputs = tensor_specs(onnx.load(path), 1)
    ort_type = {"tensor(float)": "TYPE_FP32"}

    def expected(args):
        return [
            (a.name, ort_type[a.type], tuple(d if isinstance(d, int) and d > 0 else -1 for d in a.shape[1:]))
            for a in args
        ]

    assert [(s.name, s.data_type, s.dims) for s in inputs] == expected(session.get_inputs())
    assert [(s.name, s.data_type, s.dims) for s in outputs] == expected(session.get_outputs())


def _params(tmp_path: Path, model_uri: str, **overrides) -> PublishModelParams:
    values = {
        "model_uri": model_uri,
        "repository_uri": (tmp_path / "repo" / "models").as_uri(),
        "model_name": "classifier",
        "model_version": 3,
        "max_batch_size": 16,
        "outputs_dir": str(tmp_path / "outputs"),
    }
    return PublishModelParams(**(values | overrides))


def test_publish_writes_triton_layout_and_output_parameter(tmp_path: Path):
    source = tmp_path / "classifier.onnx"
    model = _batched_classifier()
    onnx.save(model, source)
    params = _params(tmp_path, source.as_uri())

    version_uri = main(params)

    models = tmp_path / "repo" / "models"
    assert sorted(str(p.relative_to(models)) for p in models.rglob("*")) == [
        "classifier",
        "classifier/3",
        "classifier/3/model.onnx",
        "classifier/config.pbtxt",
    ]
    assert (models / "classifier" / "3" / "model.onnx").read_bytes() == source.read_bytes()
    assert (models / "classifier" / "config.pbtxt").read_text() == render_config(model, "classifier", 16)
    assert version_uri == f"{models.as_uri()}/classifier/3"
    assert (tmp_path / "outputs" / "model-version-uri").read_text() == version_uri


def test_publish_of_a_bad_model_writes_nothing(tmp_path: Path):
    source = tmp_path / "broken.onnx"
    source.write_bytes(b"not a protobuf at all")
    with pytest.raises(PublishError, match=r"broken\.onnx: not a valid ONNX model"):
        main(_params(tmp_path, source.as_uri()))
    assert not (tmp_path / "repo").exists()


def test_cli_reports_bad_input_on_one_line_with_exit_2(tmp_path: Path):
    missing = (tmp_path / "missing.onnx").as_uri()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.publish_model",
            f"--model-uri={missing}",
            f"--repository-uri={(tmp_path / 'repo').as_uri()}",
            "--model-name=m",
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT)},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"steps.publish_model: error: --model-uri {missing}: no such object"]
    assert not (tmp_path / "repo").exists()
