"""Parameters of `python -m steps.publish_model`: the single source of flag names, help and defaults."""

from __future__ import annotations

from pydantic import BaseModel, Field


class PublishModelParams(BaseModel):
    """Publish an ONNX model into a Triton model repository with a config derived from the model."""

    model_uri: str = Field(description="URI of the ONNX model to publish (file:///... or s3://...)")
    repository_uri: str = Field(
        description="Root of the Triton model repository; the model lands at <root>/<name>/<version>/model.onnx"
    )
    model_name: str = Field(
        pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$",
        description="Model name in the repository, as clients address it",
    )
    model_version: int = Field(default=1, ge=1, description="Triton model version (a positive integer)")
    max_batch_size: int = Field(
        default=8,
        ge=0,
        description="Triton max_batch_size; 0 when the model has no dynamic leading batch dimension",
    )
    s3_endpoint: str = Field(default="", description="S3 endpoint URL for MinIO/Ceph; empty for AWS")
    outputs_dir: str = Field(default="/tmp/outputs", description="Directory for Argo output parameter files")
