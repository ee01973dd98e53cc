"""Cleanup fixtures: the S3 emulator (from tests/fixtures) and a seeded store per backend."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fixtures.s3 import *  # noqa: F403 - registers s3_server, s3_bucket, faulty_s3

from .cleanup_seed import Seeded, new_seeded


@pytest.fixture(params=["file", "s3"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Seeded]:
    server = request.getfixturevalue("s3_server") if request.param == "s3" else None
    case = new_seeded(request.param, server)
    yield case
    case.close()
