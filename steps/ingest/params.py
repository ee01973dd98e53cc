"""Parameters of `python -m steps.ingest` (and of the `ingest` Argo template)."""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, PushParams, StorageParams


class IngestParams(StorageParams, OutputsParams, PushParams):
    step_module: ClassVar[str] = "steps.ingest"
    input_uri: str = Field(description="Prefix URI of the input images (s3://bucket/prefix or file:///dir).")
    output_uri: str = Field(description="Prefix URI where inference outputs go; inputs with outputs are skipped.")
    run_uri: str = Field(description="Prefix URI of this run's manifest, shards and rejects.")
    shard_size: int = Field(100, ge=1, le=100_000, description="Images per shard (one inference task each).")
    verify: Literal["header", "decode", "none"] = Field(
        "header", description="How deeply to check each image: magic bytes + header, full decode, or not at all."
    )
    max_bytes: int = Field(64 * 1024 * 1024, ge=1, description="Reject images larger than this many bytes.")
    max_pixels: int = Field(
        100_000_000, ge=1, description="Reject images with more pixels than this (checked from the header)."
    )
    force: bool = Field(False, description="Re-process inputs whose outputs already exist.")
    missing_input: Literal["error", "empty"] = Field(
        "error",
        description="A missing input directory (file store): error (exit 2, a run by hand) or empty (nothing new"
        " yet, the CronWorkflow). S3 has no directories: there an empty prefix is a warning either way.",
    )
    workers: int = Field(8, ge=1, le=256, description="Concurrent storage requests.")
