"""Metrics pushed to a real Pushgateway, and `kiosk lifecycle` checked by the S3 emulator."""

from __future__ import annotations

import json
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.config.loader import CONFIG_DIR
from pipelines.lifecycle import lifecycle_configuration
from steps.cleanup.main import run
from steps.cleanup.params import CleanupParams
from tests.fixtures.prometheus import free_port

from .cleanup_seed import new_seeded


def test_counts_are_pushed(pushgateway: str, tmp_path: Path) -> None:
    case = new_seeded("file", None)
    try:
        for key in ("uploads/a", "uploads/b"):
            case.put(key, timedelta(days=5), b"12345")
        case.put("uploads/c", timedelta(hours=2))
        params = CleanupParams(
            store=case.uri,
            prefix=["uploads"],
            older_than="3d",
            dry_run=False,
            pushgateway=pushgateway,
            outputs_dir=str(tmp_path / "out"),
        )
        assert run(params) == 0
    finally:
        case.close()
    metrics = urllib.request.urlopen(f"http://{pushgateway}/metrics", timeout=5).read().decode()
    labels = f'dry_run="false",instance="",job="kiosk-cleanup",prefix="uploads/",store="{case.uri}"'
    assert f"kiosk_cleanup_deleted_objects{{{labels}}} 2" in metrics
    assert f"kiosk_cleanup_deleted_bytes{{{labels}}} 10" in metrics
    assert f"kiosk_cleanup_scanned_objects{{{labels}}} 3" in metrics


def test_unreachable_pushgateway_is_a_warning_not_a_failure(tmp_path: Path, capsys) -> None:
    params = CleanupParams(
        store=f"file://{tmp_path}/store",
        prefix=["uploads"],
        older_than="3d",
        pushgateway=f"127.0.0.1:{free_port()}",
        outputs_dir=str(tmp_path / "out"),
        json=True,
    )
    assert run(params) == 0
    captured = capsys.readouterr()
    assert "pushgateway push failed" in captured.err
    assert "push failed" in json.loads(captured.out.strip().splitlines()[-1])["notes"][-1]


def _config_dir(tmp_path: Path, retention: str, uri: str = "s3://kiosk-lc/root") -> Path:
    for path in CONFIG_DIR.glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    (tmp_path / "test.yaml").write_text(f"storage:\n  uri: {uri}\nretention:\n{retention}")
    return tmp_path


@pytest.mark.parametrize(("older_than", "days"), [("90m", 1), ("24h", 1), ("36h", 2), ("3d", 3)])
def test_lifecycle_days_round_up(tmp_path: Path, older_than: str, days: int) -> None:
    retention = f"  prefixes: [' uploads ', uploads/sub, other/]\n  older_than: {older_than}\n"
    bucket, body, got = lifecycle_configuration(
        "test", purge_noncurrent=True, config_dir=_config_dir(tmp_path, retention)
    )
    assert (bucket, got) == ("kiosk-lc", days)
    assert body == {
        "Rules": [
            {
                "ID": f"kiosk-retention-{name}",
                "Filter": {"Prefix": f"root/{name}/"},
                "Status": "Enabled",
                "Expiration": {"Days": days},
                "NoncurrentVersionExpiration": {"NoncurrentDays": days},
            }
            for name in ("other", "uploads")
        ]
    }


def test_lifecycle_is_accepted_by_s3(s3_server, tmp_path: Path) -> None:
    """The printed JSON is a valid PutBucketLifecycleConfiguration body (the emulator parses and stores it)."""
    result = CliRunner().invoke(app, ["lifecycle", "--env", "prod"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    case = new_seeded("s3", s3_server)
    try:
        from steps.common.storage.s3 import S3Store

        store = case.store
        assert isinstance(store, S3Store)
        store._client.put_bucket_lifecycle_configuration(Bucket=store.bucket, LifecycleConfiguration=body)
        stored = store._client.get_bucket_lifecycle_configuration(Bucket=store.bucket)["Rules"]
    finally:
        case.close()
    assert [(r["ID"], r["Filter"], r["Expiration"]) for r in stored] == [
        ("kiosk-retention-uploads", {"Prefix": "uploads/"}, {"Days": 7})
    ]
    assert "midnight UTC" in result.stderr and "asynchronously" in result.stderr


def test_lifecycle_refuses_a_file_store() -> None:
    result = CliRunner().invoke(app, ["lifecycle", "--env", "local"])
    assert result.exit_code == 2 and "needs an s3:// store" in result.stderr
