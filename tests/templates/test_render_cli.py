"""`kiosk render` on a copy of the tree: --check reports drift with a diff; render repairs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.tools import REPO_ROOT

RUNNER = CliRunner()
SAMPLE = Path("argocd/workflows/dev/workflowtemplate-batch-inference.yaml")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    shutil.copytree(REPO_ROOT / "argocd", tmp_path / "argocd")
    return tmp_path


def kiosk(*args: str):
    return RUNNER.invoke(app, ["render", *args])


def test_check_passes_on_the_committed_tree(tree: Path) -> None:
    result = kiosk("--check", "--root", str(tree))
    assert result.exit_code == 0, result.output
    assert result.stdout == ""


def test_check_prints_a_diff_of_a_hand_edit_and_writes_nothing(tree: Path) -> None:
    target = tree / SAMPLE
    edited = target.read_text().replace("  activeDeadlineSeconds: 21600\n", "  activeDeadlineSeconds: 7\n", 1)
    assert edited != target.read_text()
    target.write_text(edited)
    result = kiosk("--check", "--root", str(tree))
    assert result.exit_code == 1
    assert f"--- a/{SAMPLE}" in result.stdout and f"+++ b/{SAMPLE}" in result.stdout
    assert "-  activeDeadlineSeconds: 7\n" in result.stdout and "+  activeDeadlineSeconds: 21600\n" in result.stdout
    assert target.read_text() == edited


def test_render_repairs_edits_restores_missing_and_removes_stale_files(tree: Path) -> None:
    (tree / SAMPLE).write_text("# hand edit\n")
    missing = tree / "argocd/apps/appproject-kiosk.yaml"
    missing.unlink()
    stale = tree / "argocd/workflows/prod/workflowtemplate-gone.yaml"
    stale.write_text("kind: WorkflowTemplate\n")

    check = kiosk("--check", "--root", str(tree))
    assert check.exit_code == 1
    assert "argocd/workflows/prod/workflowtemplate-gone.yaml" in check.stdout
    assert "+++ b/argocd/apps/appproject-kiosk.yaml" in check.stdout

    assert kiosk("--root", str(tree)).exit_code == 0
    assert not stale.exists() and missing.is_file()
    assert (tree / SAMPLE).read_text() == (REPO_ROOT / SAMPLE).read_text()
    assert kiosk("--check", "--root", str(tree)).exit_code == 0


def test_env_option_renders_only_that_environment(tree: Path) -> None:
    (tree / "argocd/workflows/prod/workflowtemplate-gone.yaml").write_text("x: 1\n")
    assert kiosk("--check", "--env", "dev", "--root", str(tree)).exit_code == 0
    assert kiosk("--check", "--env", "prod", "--root", str(tree)).exit_code == 1


def test_unknown_environment_is_one_line_and_exit_2(tree: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "render", "--env", "qa", "--root", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "'qa'" in result.stderr
