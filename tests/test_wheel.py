"""The wheel, installed into a fresh virtual environment, runs as a newcomer would run it.

Nothing of the checkout is importable there (the script's directory, not the current one, starts
`sys.path`), so these find import-time dependencies on dev packages and paths derived from where the
code lives: the installed `kiosk` must find the checkout from the current directory (or KIOSK_HOME).
The dependencies come pinned from uv.lock, out of uv's cache when it holds them.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool


def _uv(uv: Path, *args: str, cwd: Path = REPO_ROOT) -> str:
    done = subprocess.run([str(uv), *args], cwd=cwd, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def kiosk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The `kiosk` script of a fresh venv holding only the wheel and its locked dependencies."""
    uv = require_tool("uv")
    work = tmp_path_factory.mktemp("wheel")
    _uv(uv, "build", "--wheel", "--out-dir", str(work / "dist"))
    (wheel,) = (work / "dist").glob("kiosk_pipelines-*.whl")
    requirements = work / "requirements.txt"
    exported = _uv(uv, "export", "--frozen", "--no-default-groups", "--no-emit-project", "--no-hashes")
    requirements.write_text(exported)
    _uv(uv, "venv", "--quiet", "--python", sys.executable, str(work / "venv"))
    python = work / "venv" / "bin" / "python"
    _uv(uv, "pip", "install", "--quiet", "--python", str(python), "--no-deps", "-r", str(requirements), str(wheel))
    return work / "venv" / "bin" / "kiosk"


def _run(kiosk: Path, *args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "KIOSK_HOME"}}
    return subprocess.run(
        [str(kiosk), *args], cwd=cwd, env={**clean, **env}, capture_output=True, text=True, timeout=300, check=False
    )


def test_installed_kiosk_prints_its_help_anywhere(kiosk: Path, tmp_path: Path) -> None:
    done = _run(kiosk, "--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    for name in ("render", "lint", "run", "demo", "cluster", "submit"):
        assert f" {name} " in done.stdout


def test_installed_kiosk_renders_the_checkout_it_runs_in(kiosk: Path) -> None:
    done = _run(kiosk, "render", "--check", cwd=REPO_ROOT / "argocd")  # found by walking up, as git does
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "files up to date" in done.stderr


def test_installed_kiosk_renders_the_checkout_kiosk_home_names(kiosk: Path, tmp_path: Path) -> None:
    done = _run(kiosk, "render", "--check", cwd=tmp_path, KIOSK_HOME=str(REPO_ROOT))
    assert done.returncode == 0, done.stderr[-2000:]


def test_installed_kiosk_outside_a_checkout_says_so_in_one_line(kiosk: Path, tmp_path: Path) -> None:
    done = _run(kiosk, "render", "--check", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"kiosk: {tmp_path.resolve()}: not inside a kiosk-pipelines checkout (no pyproject.toml naming it here"
        " or above); cd into one or set KIOSK_HOME"
    ]
