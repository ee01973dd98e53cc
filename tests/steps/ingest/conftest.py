"""ingest fixtures: gofakes3, an S3 server that keeps key bytes as sent (moto re-decodes them)."""

from __future__ import annotations

import http.client
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fixtures.tools import require_tool


@dataclass(frozen=True)
class GoFakeS3:
    endpoint: str  # http://127.0.0.1:<port>

    def put_raw(self, path: str, body: bytes) -> None:
        """An unsigned PUT of `path` exactly as given (percent-escapes and all); gofakes3 accepts those."""
        connection = http.client.HTTPConnection(self.endpoint.removeprefix("http://"), timeout=10)
        try:
            connection.request("PUT", path, body=body)
            response = connection.getresponse()
            assert response.status == 200, (path, response.status, response.read())
        finally:
            connection.close()

    def create_bucket(self) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        self.put_raw(f"/{name}", b"")
        return name


@pytest.fixture
def gofakes3(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[GoFakeS3]:
    """tools/gofakes3 (in-memory) on a free loopback port, for one test, with dummy credentials."""
    binary = require_tool("gofakes3")
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing")):
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):  # never a developer's real profile
        monkeypatch.setenv(name, str(tmp_path / "none"))
    process = subprocess.Popen(
        [str(binary), "-host", "127.0.0.1:0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        endpoint = process.stdout.readline().strip()  # type: ignore[union-attr]
        assert endpoint.startswith("http://"), f"gofakes3 did not start (exit {process.poll()})"
        yield GoFakeS3(endpoint)
    finally:
        process.terminate()
        process.wait(timeout=30)
