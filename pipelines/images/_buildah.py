"""The external programs an image build runs: buildah (and its runc), mmdebstrap, gcc."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipelines.tools import find_tool

#: Program -> the Debian package that has it (.ci/install.d/40-debian-packages.sh installs them).
REQUIRED = {"buildah": "buildah", "mmdebstrap": "mmdebstrap", "runc": "runc", "busybox": "busybox-static", "gcc": "gcc"}


class ImagesError(RuntimeError):
    """A build cannot start or failed: the message is one line for the user."""


@dataclass(frozen=True, kw_only=True)
class Tools:
    buildah: Path
    mmdebstrap: Path
    runc: Path
    busybox: Path
    gcc: Path


def find_tools() -> Tools:
    """Every program the build needs; one line naming all that are missing, and their packages."""
    found = {name: find_tool(name) for name in REQUIRED}
    missing = [f"{name} (Debian package {REQUIRED[name]})" for name, path in found.items() if path is None]
    if missing:
        raise ImagesError(f"missing {', '.join(missing)}: run .ci/install")
    return Tools(**{name: path for name, path in found.items() if path is not None})


def run(argv: list[str], *, what: str, cwd: Path | None = None) -> str:
    """Run one build command; its failure is one line naming `what`, plus the last lines of its output."""
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = " | ".join((result.stderr or result.stdout).strip().splitlines()[-3:])
        raise ImagesError(f"{what} failed (exit {result.returncode}): {tail}")
    return result.stdout


@dataclass(frozen=True, kw_only=True)
class Buildah:
    """buildah with the runtime every RUN step uses: crun refuses a cgroup v1 hybrid host, runc works."""

    tools: Tools

    def __call__(self, *args: str, what: str, cwd: Path | None = None) -> str:
        return run([str(self.tools.buildah), *args], what=what, cwd=cwd)

    def exists(self, reference: str) -> bool:
        argv = [str(self.tools.buildah), "inspect", "--type", "image", reference]
        return subprocess.run(argv, capture_output=True, check=False).returncode == 0

    def image_id(self, reference: str) -> str:
        """The image's ID, or "" when buildah has none under `reference`."""
        argv = [str(self.tools.buildah), "images", "--quiet", "--no-trunc", reference]
        result = subprocess.run(argv, capture_output=True, text=True, check=False)
        return result.stdout.strip().splitlines()[0] if result.returncode == 0 and result.stdout.strip() else ""

    def forget(self, image_id: str) -> None:
        """Remove an image a rebuild replaced (best effort: one still used as a base or cache stays)."""
        subprocess.run([str(self.tools.buildah), "rmi", image_id], capture_output=True, check=False)

    def from_(self, base: str) -> str:
        """A working container on `base` ("scratch" for none); its name."""
        return self("from", "--pull-never", base, what=f"buildah from {base}").strip()

    def config(self, container: str, *, entrypoint: tuple[str, ...], cmd: tuple[str, ...], user: str = "") -> None:
        args = ["config", "--entrypoint", json.dumps(list(entrypoint))]
        args += ["--cmd", json.dumps(list(cmd))] if cmd else []
        args += ["--user", user] if user else []
        self(*args, container, what="buildah config")

    def commit(self, container: str, reference: str) -> None:
        try:
            self("commit", "--rm", container, reference, what=f"commit {reference}")
        except ImagesError:
            self("rm", container, what="buildah rm")
            raise
