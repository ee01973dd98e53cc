"""`kiosk lifecycle --env E`: the native S3 Lifecycle configuration equivalent to the retention cron.

For users who prefer to let S3 expire objects. It is not identical (S3 Lifecycle counts whole
days, rounds to the next midnight UTC, runs asynchronously, has no dry run and no max-deletes
guard), so days are rounded *up*: the lifecycle rule never deletes anything earlier than the
cleanup step would.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import typer

from pipelines.config.loader import CONFIG_DIR, ConfigError, load_config
from steps.cleanup.params import normalise_prefix
from steps.common.durations import parse_duration

DIFFERENCES = (
    "S3 Lifecycle differs from the cleanup CronWorkflow: it counts whole days (the threshold is rounded "
    "up to {days} day(s)), an object becomes eligible at the midnight UTC after creation + days, and "
    "S3 expires eligible objects asynchronously (hours to days later); there is no dry run, no "
    "--max-deletes guard, no report and no metrics."
)


def _root_prefix(uri: str) -> tuple[str, str]:
    bucket, _, root = uri.removeprefix("s3://").partition("/")
    return bucket, normalise_prefix(root)


def lifecycle_configuration(
    env: str, purge_noncurrent: bool = False, config_dir: Path = CONFIG_DIR
) -> tuple[str, dict[str, Any], int]:
    """(bucket, the PutBucketLifecycleConfiguration body, days) for the environment's retention."""
    config = load_config(env, config_dir)
    if not config.storage.uri.startswith("s3://"):
        raise ConfigError(f"{env}: storage.uri is {config.storage.uri!r}; S3 Lifecycle needs an s3:// store")
    bucket, root = _root_prefix(config.storage.uri)
    retention = config.retention
    days = max(1, math.ceil(parse_duration(retention.older_than).total_seconds() / 86_400))
    kept: list[str] = []
    for prefix in sorted({normalise_prefix(p) for p in retention.prefixes}, key=lambda p: (len(p), p)):
        # A nested prefix is already covered by its parent, as in the cleanup step.
        if not any(prefix.startswith(k) for k in kept):
            kept.append(prefix)
    rules = []
    for prefix in kept:
        rule: dict[str, Any] = {
            "ID": f"kiosk-retention-{prefix.rstrip('/').replace('/', '-')}"[:255],
            "Filter": {"Prefix": root + prefix},
            "Status": "Enabled",
            "Expiration": {"Days": days},
        }
        if purge_noncurrent:
            rule["NoncurrentVersionExpiration"] = {"NoncurrentDays": days}
        rules.append(rule)
    return bucket, {"Rules": rules}, days


def command(
    env: str = typer.Option(..., "--env", help="Environment whose retention config to translate."),
    purge_noncurrent: bool = typer.Option(
        False, "--purge-noncurrent", help="Also expire noncurrent versions (like the step's --purge-noncurrent)."
    ),
) -> None:
    """Print the native S3 Lifecycle configuration equivalent to the retention CronWorkflow."""
    try:
        bucket, body, days = lifecycle_configuration(env, purge_noncurrent)
    except ConfigError as error:
        typer.echo(f"kiosk lifecycle: error: {error}", err=True)
        raise typer.Exit(2) from None
    typer.echo(json.dumps(body, indent=2))
    typer.echo(DIFFERENCES.format(days=days), err=True)
    typer.echo(
        f"Apply with: aws s3api put-bucket-lifecycle-configuration --bucket {bucket} "
        "--lifecycle-configuration file://lifecycle.json (this replaces the bucket's existing rules).",
        err=True,
    )
