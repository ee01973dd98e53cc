"""Parameters of `python -m steps.cleanup` (retention: delete objects older than a threshold)."""

from typing import ClassVar, Literal

from pydantic import Field

from steps.common.params_base import OutputsParams, StorageParams


class CleanupParams(StorageParams, OutputsParams):
    step_module: ClassVar[str] = "steps.cleanup"
    store: str = Field(description="Store URI: s3://bucket or file:///dir.")
    prefix: list[str] = Field(
        description="Prefix to clean, always treated as a directory; repeat the flag or pass a JSON list."
    )
    older_than: str = Field(description="Age threshold, e.g. 90m, 36h, 3d.")
    dry_run: bool = Field(True, description="Report what would be deleted and delete nothing.")
    max_deletes: int = Field(
        10_000, ge=0, description="Abort before deleting anything when more objects than this would go."
    )
    allow_bucket_root: bool = Field(False, description="Allow an empty or '/' prefix (the whole bucket).")
    force: bool = Field(False, description="Allow a threshold under one hour.")
    purge_noncurrent: bool = Field(False, description="Also delete noncurrent versions older than the threshold.")
    clock_skew_margin: str = Field("5m", description="Refuse to run when the server clock differs by more.")
    workers: int = Field(4, ge=1, le=64, description="Concurrent DeleteObjects calls.")
    json_report: bool = Field(False, alias="json", description="Print one JSON report on stdout's last line.")
    report: str = Field("", description="URI where the JSON report is also written; empty: none.")
    pushgateway: str = Field("", description="Prometheus Pushgateway address; empty disables pushing.")
