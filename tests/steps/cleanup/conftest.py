"""Cleanup fixtures: a seeded store per backend (the S3 emulator is the tests/fixtures/s3 plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .cleanup_seed import Seeded, new_seeded


@pytest.fixture(params=["file", "s3"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    case = new_seeded(request.param, server)
    yield case
    case.close()
