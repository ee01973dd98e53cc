"""Parameters of `python -m steps.cleanup` (retention: delete objects older than a threshold).

The prefix rule lives here too (pure stdlib) because `kiosk lifecycle` must derive the native S3
Lifecycle rule from exactly the same reading of the config, and `pipelines` may import only params
modules (durations: `steps.common.durations`).
"""

from typing import ClassVar

from pydantic import Field

from steps.common.params_base import OutputsParams, PushParams, StorageParams


def normalise_prefix(raw: str) -> str:
    """A prefix as a directory: stripped, no leading '/', exactly one trailing '/'; '' is the bucket root.

    `uploads` becomes `uploads/`, so it can never match `uploads-archive/x`, `uploads2/x` or `uploads.png`.
    ValueError for `.`/`..` segments, which the file store and S3 would read differently.
    """
    parts = [p for p in raw.strip().split("/") if p != ""]
    if any(p in {".", ".."} for p in parts):
        raise ValueError(f"{raw!r} contains a '.' or '..' path segment")
    return "/".join(parts) + "/" if parts else ""


class CleanupParams(StorageParams, OutputsParams, PushParams):
    step_module: ClassVar[str] = "steps.cleanup"
    store: str = Field(description="Store URI: s3://bucket[/prefix] or file:///dir.")
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
    purge_noncurrent: bool = Field(
        False, description="Also delete versions that have been noncurrent for longer than the threshold."
    )
    clock_skew_margin: str = Field("5m", description="Refuse to run when the server clock differs by more.")
    workers: int = Field(4, ge=1, le=64, description="Concurrent DeleteObjects calls per process.")
    processes: int = Field(
        0,
        ge=0,
        le=64,
        description="Processes that list and delete key ranges side by side; 0: one per CPU the container may use.",
    )
    json_report: bool = Field(False, alias="json", description="Print one JSON report on stdout's last line.")
    report: str = Field("", description="URI where the JSON report is also written; empty: none.")
    prune_metrics_older_than: str = Field(
        "",
        description="Also delete the Pushgateway groups of --env's batch runs (ingest and infer lanes) last pushed "
        "longer ago than this, e.g. 14d (needs --pushgateway; a dry run only counts them); empty: keep them.",
    )
    print_keys: bool = Field(False, description="Print one line per matching object (URI and size) before the report.")
