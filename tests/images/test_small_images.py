"""The small images `kiosk images build` makes: argosay runs upstream's script, pause waits for a signal."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from pipelines.images import archive
from pipelines.images.build import images_dir
from pipelines.tools import in_ci
from testkit.runc_bundle import Bundle, Security, unpack
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until


def _archive(name: str) -> Path:
    entry = archive.read_index(images_dir()).get(name)
    if entry is None:
        message = f"no {name} image in .tools/images (run .ci/install.d/60-images.sh)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return images_dir() / entry["archive"]


def test_argosay_echo_prints(tmp_path: Path) -> None:
    bundle = Bundle.create(archive=_archive("argosay"), path=tmp_path)
    entrypoint = bundle.image_config["Entrypoint"]
    security = Security(uid=0, gid=0, read_only_root=True)
    result = bundle.run(require_tool("runc"), [*entrypoint, "echo", "hello from argosay"], security=security)
    assert (result.returncode, result.stdout) == (0, "hello from argosay\n"), result.stderr


def _catches(pid: int, signum: int) -> bool:
    """Whether `pid` has installed a handler for `signum` (the SigCgt mask of /proc/<pid>/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
    return bool(caught & (1 << (signum - 1)))


def test_pause_exits_on_sigterm(tmp_path: Path) -> None:
    unpack(_archive("pause"), tmp_path)
    with subprocess.Popen([tmp_path / "pause"]) as process:
        wait_until(lambda: _catches(process.pid, signal.SIGTERM), 30, "pause to handle SIGTERM")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 128 + signal.SIGTERM


def test_argoexec_image_runs_static_binary(tmp_path: Path) -> None:
    bundle = Bundle.create(archive=_archive("argoexec"), path=tmp_path)
    assert bundle.image_config["Entrypoint"] == ["argoexec"]
    security = Security(uid=0, gid=0, read_only_root=True)
    result = bundle.run(require_tool("runc"), ["/bin/argoexec", "version"], security=security)
    assert result.returncode == 0, result.stderr
    # Built without upstream's -X version ldflags, like .tools/bin/argoexec: the version reads v0.0.0.
    assert result.stdout.startswith("argoexec: ") and "Platform: linux/amd64" in result.stdout
