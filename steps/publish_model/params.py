"""Parameters of `python -m steps.publish_model` (Triton model repository layout on S3)."""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class PublishModelParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.publish_model"
    model_uri: str = Field(description="ONNX model to publish (s3://, file:// or package://).")
    repository_uri: str = Field(description="Triton model repository prefix URI.")
    model_name: str = Field(description="Model name in the repository.", pattern=r"^[a-zA-Z0-9_.-]+$")
    model_version: int = Field(1, ge=1, description="Model version directory number.")
    max_batch_size: int = Field(8, ge=0, description="Triton max_batch_size (0: no batching dimension).")
