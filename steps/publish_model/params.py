"""Parameters of `python -m steps.publish_model` (Triton model repository layout on S3)."""

from typing import ClassVar

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class PublishModelParams(StorageParams, OutputsParams):
    """Publish an ONNX model into a Triton model repository with a config derived from the model."""

    step_module: ClassVar[str] = "steps.publish_model"
    model_uri: str = Field(description="ONNX model to publish (s3://, file:// or package://).")
    repository_uri: str = Field(
        description="Root of the Triton model repository; the model lands at <root>/<name>/<version>/model.onnx."
    )
    model_name: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$", description="Model name in the repository, as clients address it."
    )
    model_version: int = Field(1, ge=1, description="Triton model version (a positive integer).")
    max_batch_size: int = Field(
        8, ge=0, description="Triton max_batch_size; 0 when the model has no dynamic leading batch dimension."
    )
