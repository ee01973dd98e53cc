"""Locate the external programs the lint and test tooling needs.

Install scripts under `.ci/install.d/` put binaries in `<repo>/.tools/bin`, which is searched before
PATH so a repo-pinned version wins over whatever the machine happens to have.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
TOOLS_BIN = REPO_ROOT / ".tools" / "bin"


def find_tool(name: str) -> Path | None:
    """Return the path of executable `name`, preferring `.tools/bin`, or None when absent."""
    local = TOOLS_BIN / name
    if local.is_file() and os.access(local, os.X_OK):
        return local
    found = shutil.which(name)
    return Path(found) if found else None


def in_ci() -> bool:
    """CI=true turns every missing tool into a failure instead of a skip."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}
