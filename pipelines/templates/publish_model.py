"""`publish-model` WorkflowTemplate: copy the ONNX model into the Triton model repository."""

from __future__ import annotations

from hera.workflows import WorkflowTemplate

from pipelines.config import KioskConfig
from pipelines.templates import _common
from steps.publish_model.params import PublishModelParams

NAME = "publish-model"
INPUTS = ("model_uri", "repository_uri", "model_name", "model_version", "max_batch_size")
OUTPUTS = {"model-version-uri": "URI of the published model version directory."}


def defaults(cfg: KioskConfig) -> dict[str, object]:
    return {
        "model_uri": cfg.model.uri,
        "repository_uri": f"{cfg.storage.uri}/{cfg.model.repository_prefix}",
        "model_name": cfg.model.name,
        "max_batch_size": cfg.inference.batch_size,
    }


def build(cfg: KioskConfig, env: str) -> WorkflowTemplate:
    return _common.single_step_template(
        cfg,
        env,
        _common.StepSpec(
            name="publish-model", model=PublishModelParams, inputs=INPUTS, outputs=OUTPUTS, defaults=defaults(cfg)
        ),
        name=NAME,
        title="Publish model",
        description="Publishes the ONNX model as a new version in the Triton model repository the serving chart reads.",
    )
