"""Cleanup fixtures: a seeded store per backend (the S3 emulator is the tests/fixtures/s3 plugin)."""

from __future__ import annotations

import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fixtures.prometheus import free_port
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until

from .cleanup_seed import Seeded, new_seeded


def _ready(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1).close()
    except OSError:
        return False
    return True


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    """A real Pushgateway of the test's own, on 127.0.0.1 (its address)."""
    binary = require_tool("prometheus-pushgateway")
    address = f"127.0.0.1:{free_port()}"
    # Debian's build persists to /var/lib/prometheus by default: groups of other runs would come back.
    persistence = f"--persistence.file={tmp_path / 'pushgateway.data'}"
    process = subprocess.Popen(
        [str(binary), f"--web.listen-address={address}", persistence],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: _ready(f"http://{address}/-/ready"), 30, "the Pushgateway to be ready")
        yield address
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(params=["file", "s3"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    case = new_seeded(request.param, server)
    yield case
    case.close()
