"""Locate the pinned argo-workflows Go module in the Go module cache.

The validator (`tools/argo-validate`), the official JSON schema, the CRDs and the upstream examples
used by the runner's fidelity tests all come from this one pinned module; nothing is vendored.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path

from pipelines import project
from pipelines.tools import find_tool

MODULE = "github.com/argoproj/argo-workflows/v4"


def go_mod() -> Path:
    """`tools/argo-validate/go.mod` of the checkout: the pin."""
    return project.root() / "tools" / "argo-validate" / "go.mod"


class ArgoModuleError(RuntimeError):
    pass


def pinned_version() -> str:
    """The version `tools/argo-validate/go.mod` requires."""
    match = re.search(rf"^\s*(?:require\s+)?{re.escape(MODULE)}\s+(v\S+)", go_mod().read_text(), re.M)
    if not match:
        raise ArgoModuleError(f"{go_mod()}: no requirement on {MODULE}")
    return match.group(1)


@functools.cache
def module_dir() -> Path:
    """Directory of the pinned module in the module cache, downloading it if needed."""
    go = find_tool("go")
    if go is None:
        raise ArgoModuleError("go is not installed: it is needed to read the pinned argo-workflows module")
    version = pinned_version()
    cache = subprocess.run([str(go), "env", "GOMODCACHE"], check=True, capture_output=True, text=True)
    path = Path(cache.stdout.strip()) / f"{MODULE}@{version}"
    if not path.is_dir():
        subprocess.run(
            [str(go), "mod", "download", f"{MODULE}@{version}"],
            check=True,
            capture_output=True,
            cwd=go_mod().parent,
        )
    if not path.is_dir():
        raise ArgoModuleError(f"{MODULE}@{version} is not in the module cache at {path}")
    return path
