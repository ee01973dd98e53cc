"""Give every node a private `/tmp` (and private emptyDir mounts), like a pod's own filesystem.

Upstream examples write outputs to fixed paths such as `/tmp/num` from several parallel pods, and
our steps write `/tmp/outputs/...`. Preferred method: a mount namespace (`unshare --mount`, plus
`--user --map-root-user` when not root) in which the node's directory under the workdir is
bind-mounted over `/tmp`; it lives on the host, so output files can be read after the process exits.
Paths under the real `/tmp` that the node must still reach (the workdir, the repo) are bind-mounted
back at the same place inside the private `/tmp`.

Fallback where namespaces are unavailable (no `unshare`, user namespaces disabled, macOS): textual
rewriting of `/tmp` (and emptyDir mount paths) in the command, args and script source, plus
`TMPDIR`. It covers paths spelled in the manifest, not paths a program computes itself.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

from pipelines.runner.errors import RunnerError

UNSHARE = "unshare"
REWRITE = "rewrite"


def _unshare_prefix() -> list[str]:
    prefix = ["unshare", "--mount", "--propagation", "private"]
    if os.geteuid() != 0:
        prefix += ["--user", "--map-root-user"]
    return prefix


@functools.cache
def method() -> str:
    """`unshare` when a probe proves private mounts work here, else `rewrite`."""
    if os.environ.get("KIOSK_ISOLATION") == REWRITE:
        return REWRITE
    if not shutil.which("unshare") or not shutil.which("mount"):
        return REWRITE
    with tempfile.TemporaryDirectory() as probe:
        argv = wrap(["sh", "-c", "echo ok > /tmp/kiosk-probe"], {"/tmp": Path(probe)}, [], UNSHARE)
        try:
            done = subprocess.run(argv, capture_output=True, timeout=20, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return REWRITE
        ok = done.returncode == 0 and (Path(probe) / "kiosk-probe").is_file()
    return UNSHARE if ok else REWRITE


def _inside(path: Path, mount: str) -> bool:
    return path == Path(mount) or Path(mount) in path.parents


def hidden_by_private_tmp(path: Path, kept: list[Path]) -> bool:
    """Whether a host path is out of a node's sight: under /tmp, which each node gets privately (as
    each pod does on a cluster), and not inside one of the paths bound back into it.
    """
    return _inside(path, "/tmp") and not any(_inside(path, str(k)) for k in kept)


def wrap(argv: list[str], mounts: dict[str, Path], keep: list[Path], how: str | None = None) -> list[str]:
    """Argv that runs `argv` with `mounts` (container path -> host dir) private to it."""
    how = how or method()
    if how == REWRITE:
        return [rewrite(a, mounts) for a in argv]
    script = ["set -e"]
    for target, host in mounts.items():
        if target == "/tmp":
            continue
        if not Path(target).is_dir():
            raise RunnerError(f"emptyDir mountPath {target!r} does not exist on this machine; mount it under /tmp")
        script.append(f"mount --bind {shlex.quote(str(host))} {shlex.quote(target)}")
    private_tmp = mounts.get("/tmp")
    if private_tmp is not None:
        for path in keep:
            if _inside(path, "/tmp"):
                inner = private_tmp / path.relative_to("/tmp")
                script.append(f"mkdir -p {shlex.quote(str(inner))}")
                script.append(f"mount --bind {shlex.quote(str(path))} {shlex.quote(str(inner))}")
        script.append(f"mount --rbind {shlex.quote(str(private_tmp))} /tmp")
    script.append('exec "$@"')
    return [*_unshare_prefix(), "--", "sh", "-c", "\n".join(script), "kiosk-node", *argv]


def rewrite(text: str, mounts: dict[str, Path]) -> str:
    """The fallback's path rewrite, in one pass so a replacement is never rewritten again."""
    if not mounts:
        return text
    targets = sorted(mounts, key=len, reverse=True)
    pattern = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(t) for t in targets) + r")(?=/|\b|$)")
    return pattern.sub(lambda m: str(mounts[m.group(1)]), text)


def host_path(path: str, mounts: dict[str, Path]) -> Path:
    """Where a node's container path (e.g. an output parameter file) lives on the host."""
    for target in sorted(mounts, key=len, reverse=True):
        if _inside(Path(path), target):
            return mounts[target] / Path(path).relative_to(target)
    return Path(path)
