"""Where the project is: the checkout a command works in, and where its local state goes.

`kiosk` is an installable package, so nothing here is derived from where the code lives: an
installed wheel sits in site-packages, far from the checkout whose `argocd/` it renders. The
checkout is found as git finds `.git`: `$KIOSK_HOME` when set, else the current directory or the
nearest one above it holding a `pyproject.toml` whose `[project] name` is ours.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

NAME = "kiosk-pipelines"
HOME_VARIABLE = "KIOSK_HOME"
WORKDIR_VARIABLE = "KIOSK_WORKDIR"
#: Where the packages of the running `kiosk` live (a checkout, or site-packages once installed):
#: what a local pod needs on PYTHONPATH to run `python -m steps.<name>`, never the project root.
PACKAGES_DIR = Path(__file__).resolve().parent.parent


class ProjectError(Exception):
    """No checkout here: the one line a command prints before exiting with 2."""


def is_checkout(path: Path) -> bool:
    """Whether `path` holds a `pyproject.toml` naming this project."""
    try:
        meta = tomllib.loads((path / "pyproject.toml").read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return False
    return meta.get("project", {}).get("name") == NAME


def find_root(start: Path | None = None) -> Path | None:
    """The checkout `start` (default: the current directory) is in, or None."""
    here = (start or Path.cwd()).resolve()
    return next((path for path in (here, *here.parents) if is_checkout(path)), None)


def root() -> Path:
    """The project root: `$KIOSK_HOME`, else the checkout the current directory is in."""
    home = os.environ.get(HOME_VARIABLE)
    if home:
        path = Path(home).resolve()
        if not is_checkout(path):
            raise ProjectError(f"{HOME_VARIABLE}={home}: no pyproject.toml with [project] name = {NAME!r} there")
        return path
    found = find_root()
    if found is None:
        raise ProjectError(
            f"{Path.cwd()}: not inside a {NAME} checkout (no pyproject.toml naming it here or above);"
            f" cd into one or set {HOME_VARIABLE}"
        )
    return found


def default_workdir() -> Path:
    """Where local runs and the local cluster keep their files: `$KIOSK_WORKDIR`, else `.kiosk` in the
    project root (git-ignored).
    """
    return Path(os.environ.get(WORKDIR_VARIABLE) or root() / ".kiosk").resolve()


def tools_bin() -> Path | None:
    """`.tools/bin` of the checkout, where `.ci/install` puts the pinned tools; None outside one."""
    home = os.environ.get(HOME_VARIABLE)
    base = Path(home).resolve() if home else find_root()
    return base / ".tools" / "bin" if base is not None and is_checkout(base) else None
