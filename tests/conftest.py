"""Shared fixtures. Fixture modules live in tests/fixtures/ and are loaded as plugins."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.tools import find_tool, in_ci

REPO_ROOT = Path(__file__).resolve().parent.parent


def require_tool(name: str) -> Path:
    """Path of an external tool; skip locally when it is missing, but fail in CI (CI=true)."""
    path = find_tool(name)
    if path is None:
        message = f"required tool {name!r} is not installed (run .ci/install)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return path
