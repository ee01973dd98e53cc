"""Fixtures for the data-plane step tests: a store parametrized over file and the S3 emulator."""

from __future__ import annotations

import pytest

from tests.fixtures.s3 import S3Bucket
from tests.fixtures.stepkit import StoreCase


@pytest.fixture(params=["file", "s3"])
def store_case(request: pytest.FixtureRequest, tmp_path) -> StoreCase:
    """An empty store root, once on the file store and once on the S3 emulator."""
    if request.param == "file":
        return StoreCase("file", f"file://{tmp_path}/store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return StoreCase("s3", bucket.uri, bucket.endpoint)
