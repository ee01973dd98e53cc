"""Shared fixtures. Fixture modules live in tests/fixtures/ and are loaded as plugins (below); a
directory's own fixtures live in its conftest.py. Helpers are imported from their module: the repo
root is `pipelines.tools.REPO_ROOT`, external tools come from `tests.fixtures.tools.require_tool`.
"""

pytest_plugins = ["tests.fixtures.s3", "tests.fixtures.prometheus", "tests.fixtures.checkout"]
