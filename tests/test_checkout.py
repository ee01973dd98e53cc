"""The checkout-is-unchanged check (tests/fixtures/checkout.py) fails a session that writes into the
checkout, and passes one that does not: shown on a throwaway checkout that KIOSK_HOME names.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool

WRITES = """import os, pathlib


def test_writes():
    (pathlib.Path(os.environ["KIOSK_HOME"]) / "{name}").write_text("x")
"""


def _session(tmp_path: Path, name: str) -> subprocess.CompletedProcess[str]:
    git = require_tool("git")
    home = tmp_path / "checkout"
    home.mkdir()
    (home / "pyproject.toml").write_text('[project]\nname = "kiosk-pipelines"\n')
    subprocess.run([str(git), "init", "-q", str(home)], check=True, timeout=60)
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "test_it.py").write_text(WRITES.format(name=name))
    env = {**os.environ, "KIOSK_HOME": str(home), "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.fixtures.checkout", "-p", "no:cacheprovider", "-q", str(suite)],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_checkout_check_fails_a_session_that_writes_into_it(tmp_path: Path) -> None:
    done = _session(tmp_path, "result.txt")
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout
    assert "the tests changed the checkout" in done.stdout and "?? result.txt" in done.stdout


def test_checkout_check_passes_a_session_that_writes_elsewhere(tmp_path: Path) -> None:
    done = _session(tmp_path, ".git/elsewhere")  # inside .git: not an entry of `git status`
    assert done.returncode == 0, done.stdout
