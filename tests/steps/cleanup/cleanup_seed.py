"""Stores (file, and the moto S3 *emulator* on 127.0.0.1) seeded with objects of chosen ages.

Ages on S3 are real LastModified values: the emulator runs in this process, so its clock
(`moto.s3.models.utcnow`, what it stamps on PUT) is set to `now - age` while an object is written.
Ages on the file store are mtimes set with os.utime.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from steps.common.storage import Store, open_store
from tests.fixtures.s3 import S3Server


@contextlib.contextmanager
def emulator_clock(at: datetime) -> Iterator[None]:
    import moto.s3.models as models

    original = models.utcnow
    models.utcnow = lambda: at.astimezone(UTC).replace(tzinfo=None)
    try:
        yield
    finally:
        models.utcnow = original


@dataclass
class Seeded:
    """An empty store root on which tests write objects with a given age."""

    kind: str  # "file" or "s3"
    uri: str
    endpoint: str = ""
    root: Path | None = None  # file store directory
    _store: Store | None = field(default=None, repr=False)

    @property
    def store(self) -> Store:
        if self._store is None:
            self._store = open_store(self.uri, s3_endpoint=self.endpoint)
        return self._store

    def put(self, key: str, age: timedelta, data: bytes = b"x") -> None:
        when = datetime.now(UTC) - age
        if self.kind == "file":
            self.store.put_bytes(key, data)
            stamp = when.timestamp()
            os.utime(self.root / key, (stamp, stamp))  # type: ignore[operator]
        else:
            with emulator_clock(when):
                self.store.put_bytes(key, data)

    def keys(self) -> set[str]:
        return {info.key for info in self.store.list("")}

    def args(self) -> list[str]:
        return [f"--store={self.uri}"] + ([f"--s3-endpoint={self.endpoint}"] if self.endpoint else [])

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)


def new_seeded(kind: str, server: S3Server | None, endpoint: str = "", versioned: bool = False) -> Seeded:
    """A fresh store; a new bucket each call, so hypothesis examples never see each other's objects."""
    if kind == "file":
        root = Path(tempfile.mkdtemp(prefix="kiosk-cleanup-"))
        return Seeded("file", f"file://{root}", root=root)
    assert server is not None
    bucket = server.create_bucket()
    if versioned:
        body = (
            b'<VersioningConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            b"<Status>Enabled</Status></VersioningConfiguration>"
        )
        # Without a Content-Type, urllib sends a form type and the emulator does not see the XML.
        request = urllib.request.Request(
            f"{server.endpoint}/{bucket}?versioning",
            data=body,
            method="PUT",
            headers={"Content-Type": "application/xml"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200
    return Seeded("s3", f"s3://{bucket}", endpoint or server.endpoint)
