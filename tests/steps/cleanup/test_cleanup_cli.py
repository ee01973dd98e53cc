"""The step as Argo runs it: flags, refusals (exit 2), --max-deletes (exit 4), JSON report, outputs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest

from pipelines.tools import REPO_ROOT
from steps.cleanup.main import check_clock, execute, run
from steps.cleanup.params import CleanupParams
from steps.common.cli import main as cli_main
from steps.common.errors import StepError

OLD, YOUNG = timedelta(days=5), timedelta(hours=2)


def cleanup(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "steps.cleanup", *args], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )


def last_json(result: subprocess.CompletedProcess[str]) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def seed_basic(seeded) -> None:
    for key, age in [
        ("uploads/a", OLD),
        ("uploads/b/c", OLD),
        ("uploads/new", YOUNG),
        ("uploads-archive/a", OLD),
        ("uploads.png", OLD),
        ("uploads2/x", OLD),
    ]:
        seeded.put(key, age, b"12345")


def test_argo_style_run_deletes_and_writes_outputs(seeded, tmp_path) -> None:
    seed_basic(seeded)
    before = seeded.keys()
    out = tmp_path / "outputs"
    report_uri = f"file://{tmp_path}/reports/run.json"
    result = cleanup(
        *seeded.args(),
        '--prefix=["uploads"]',
        "--older-than=3d",
        "--max-deletes=10",
        "--dry-run=false",
        "--json=true",
        f"--report={report_uri}",
        f"--outputs-dir={out}",
    )
    assert result.returncode == 0, result.stderr
    report = last_json(result)
    assert {"deleted", "bytes", "dry_run", "per_prefix", "errors", "scanned"} <= set(report)
    assert (report["deleted"], report["bytes"], report["dry_run"], report["scanned"]) == (2, 10, False, 3)
    assert seeded.keys() == before - {"uploads/a", "uploads/b/c"}
    assert (out / "deleted").read_text() == "2" and (out / "bytes").read_text() == "10"
    assert (out / "report").read_text() == report_uri
    assert json.loads((tmp_path / "reports/run.json").read_text()) == report


def in_process(capsys, *args: str) -> tuple[int, list[str]]:
    """The `python -m steps.cleanup` entry point without a new interpreter: (exit code, stdout lines)."""
    with pytest.raises(SystemExit) as exit_info:
        cli_main(CleanupParams, run, list(args))
    return exit_info.value.code, capsys.readouterr().out.strip().splitlines()


def test_dry_run_deletes_nothing_and_lists_what_would_go(seeded, tmp_path, capsys) -> None:
    seed_basic(seeded)
    before = seeded.keys()
    code, lines = in_process(
        capsys,
        *seeded.args(),
        "--prefix=uploads",
        "--older-than=3d",
        "--dry-run",
        "--json",
        "--print-keys",
        f"--outputs-dir={tmp_path}",
    )
    assert code == 0
    assert seeded.keys() == before
    report = json.loads(lines[-1])
    assert (report["deleted"], report["would_delete"], report["would_delete_bytes"]) == (0, 2, 10)
    listed = [line.split()[1] for line in lines[:-1]]
    assert listed == [seeded.store.uri_for("uploads/a"), seeded.store.uri_for("uploads/b/c")]


def test_max_deletes_aborts_with_nothing_deleted(seeded, tmp_path, capsys) -> None:
    seed_basic(seeded)
    before = seeded.keys()
    code, lines = in_process(
        capsys,
        *seeded.args(),
        "--prefix=uploads",
        "--prefix=uploads2",
        "--older-than=3d",
        "--max-deletes=2",
        "--dry-run=false",
        "--json=true",
        f"--outputs-dir={tmp_path}",
    )
    assert code == 4
    assert seeded.keys() == before
    report = json.loads(lines[-1])
    assert (report["aborted"], report["would_delete"], report["deleted"]) == ("max-deletes", 3, 0)
    assert "nothing was deleted" in report["notes"][-1]
    assert (tmp_path / "deleted").read_text() == "0"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--prefix=/", "--older-than=3d"], "whole bucket"),
        (['--prefix=["uploads", " "]', "--older-than=3d"], "whole bucket"),
        (["--prefix=uploads", "--older-than=30m"], "under 1 hour"),
        (["--prefix=uploads", "--older-than=3 days"], "--older-than"),
        (["--prefix=uploads", "--older-than=0d"], "--older-than"),
        (["--prefix=uploads", "--older-than=3d", "--clock-skew-margin=x"], "--clock-skew-margin"),
        (["--prefix=../etc", "--older-than=3d"], "--prefix"),
    ],
)
def test_refusals_are_one_line_exit_2_and_delete_nothing(tmp_path, capsys, args: list[str], message: str) -> None:
    # In-process through the same entry point as `python -m steps.cleanup` (a process costs ~1.5 s here).
    (tmp_path / "uploads").mkdir()
    (tmp_path / "uploads" / "a").write_text("x")
    os.utime(tmp_path / "uploads" / "a", (0, 0))
    with pytest.raises(SystemExit) as exit_info:
        cli_main(CleanupParams, run, [f"--store=file://{tmp_path}", *args, "--dry-run=false", "--force=false"])
    assert exit_info.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps.cleanup: error:") and message in lines[0], lines
    assert (tmp_path / "uploads" / "a").exists()


def test_root_and_sub_hour_need_explicit_flags(tmp_path, capsys) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "a").write_text("x")
    os.utime(tmp_path / "store" / "a", (0, 0))
    with pytest.raises(SystemExit) as exit_info:
        cli_main(
            CleanupParams,
            run,
            [
                f"--store=file://{tmp_path}/store",
                "--prefix=/",
                "--allow-bucket-root",
                "--older-than=30m",
                "--force",
                "--json",
                f"--outputs-dir={tmp_path}/out",
            ],
        )
    assert exit_info.value.code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert list(report["per_prefix"]) == [""] and report["would_delete"] == 1 and report["deleted"] == 0


class _SkewedStore:
    """The real file store, as seen from a node whose clock is off (only the clock is replaced)."""

    uri = "file:///skewed"

    def __init__(self, offset: timedelta) -> None:
        self.offset = offset

    def server_time(self) -> datetime:
        return datetime.now(UTC) + self.offset


@pytest.mark.parametrize(
    ("offset", "refused"), [(timedelta(minutes=6), True), (-timedelta(minutes=6), True), (timedelta(minutes=4), False)]
)
def test_clock_skew_beyond_the_margin_is_refused(offset: timedelta, refused: bool) -> None:
    store = _SkewedStore(offset)
    if refused:
        with pytest.raises(StepError, match="clock skew"):
            check_clock(store, timedelta(minutes=5))  # type: ignore[arg-type]
    else:
        assert abs(check_clock(store, timedelta(minutes=5)) - (datetime.now(UTC) + offset)) < timedelta(seconds=5)  # type: ignore[arg-type]


def test_skew_is_checked_before_anything_is_deleted(seeded) -> None:
    seed_basic(seeded)
    before = seeded.keys()
    params = CleanupParams(
        store=seeded.uri, s3_endpoint=seeded.endpoint, prefix=["uploads"], older_than="3d", dry_run=False
    )
    with pytest.raises(StepError, match="clock skew"):
        execute(params, clock=lambda: datetime.now(UTC) - timedelta(hours=1), store=seeded.store)
    assert seeded.keys() == before


def test_nested_prefixes_are_counted_once(seeded) -> None:
    seed_basic(seeded)
    params = CleanupParams(
        store=seeded.uri, s3_endpoint=seeded.endpoint, prefix=["uploads/b", "uploads"], older_than="3d", dry_run=False
    )
    report = execute(params, store=seeded.store).to_dict()
    assert report["deleted"] == 2 and list(report["per_prefix"]) == ["uploads/"]
    assert report["covered_prefixes"] == {"uploads/b/": "uploads/"}
