"""Locate the external programs the lint and test tooling needs.

Install scripts under `.ci/install.d/` put binaries in `<checkout>/.tools/bin`, which is searched
before PATH so a repo-pinned version wins over whatever the machine happens to have. Outside a
checkout (an installed `kiosk` run elsewhere) only PATH is searched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from pipelines import project


def find_tool(name: str) -> Path | None:
    """Return the path of executable `name`, preferring `.tools/bin`, or None when absent."""
    local = project.tools_bin()
    if local is not None and (local / name).is_file() and os.access(local / name, os.X_OK):
        return local / name
    found = shutil.which(name)
    return Path(found) if found else None


def in_ci() -> bool:
    """CI=true turns every missing tool into a failure instead of a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def __getattr__(name: str) -> Any:
    # `REPO_ROOT` for the tests, which always run inside a checkout: resolved when first asked for
    # (PEP 562), so importing this module never needs one. Commands call `project.root()` instead.
    if name == "REPO_ROOT":
        return project.root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
