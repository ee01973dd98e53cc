"""Base class of every step's params model (pydantic only, so `pipelines` may import it).

A params model is the single source of the Argo input parameter names (kebab-case of the field
names), their descriptions, defaults and enums (from `Literal`), and of the step's CLI flags.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field


class StepParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The module run in the container: `python -m <step_module>` (a ClassVar: not a flag).
    step_module: ClassVar[str] = ""


class StorageParams(StepParams):
    """Fields every step that touches storage shares."""

    s3_endpoint: str = Field(
        "",
        description="S3 endpoint URL for MinIO/Ceph/other S3-compatible stores; empty means AWS.",
    )
    s3_max_attempts: int = Field(
        5, ge=1, le=20, description="Total attempts per S3 request (botocore 'standard' retry mode)."
    )


class OutputsParams(StepParams):
    outputs_dir: str = Field(
        "/tmp/outputs",
        description="Directory where the step writes its Argo output parameters, one file each.",
    )


class PushParams(StepParams):
    """Fields every step that pushes its metrics to a Pushgateway shares."""

    pushgateway: str = Field("", description="Prometheus Pushgateway address; empty disables pushing.")
    env: str = Field(
        "",
        description="The environment's name, the `env` label of every pushed group: envs that share a "
        "Pushgateway keep their groups apart (cleanup prunes only its own env's).",
    )
