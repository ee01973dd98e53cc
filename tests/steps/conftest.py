"""Fixtures for the data-plane step tests: the S3 emulator and a store parametrized over file and S3."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from fixtures.s3 import *  # noqa: F403 - registers s3_server, s3_bucket, faulty_s3
from fixtures.s3 import S3Bucket


@dataclass(frozen=True)
class StoreCase:
    kind: str  # "file" or "s3"
    uri: str  # root URI of an empty store
    endpoint: str = ""  # --s3-endpoint


@pytest.fixture(params=["file", "s3"])
def store_case(request: pytest.FixtureRequest, tmp_path) -> StoreCase:
    """An empty store root, once on the file store and once on the S3 emulator."""
    if request.param == "file":
        return StoreCase("file", f"file://{tmp_path}/store")
    bucket: S3Bucket = request.getfixturevalue("s3_bucket")
    return StoreCase("s3", bucket.uri, bucket.endpoint)


def run_step(module: str, model: type, run, args: list[str]) -> int:
    """Run a step in-process through its real CLI entry (argv parsing, one-line errors); the exit code."""
    from steps.common.cli import main

    try:
        main(model, run, args)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    raise AssertionError(f"{module} did not exit")


def read_outputs(directory) -> dict[str, str]:
    from pathlib import Path

    return {p.name: p.read_text() for p in Path(directory).iterdir() if not p.name.startswith(".")}
