"""Run one `container` or `script` template as a local process, the way a pod would run it.

The image is ignored: the command runs on this machine (`python`/`python3` become the runner's own
interpreter so steps see the project's environment, other names can be mapped by the caller).
Every process runs in a working directory of its own (below), with `PYTHONPATH` = where our packages
live, `KIOSK_WORKDIR` set and a private `/tmp` (see isolation.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import project
from pipelines.runner import isolation
from pipelines.runner.errors import RunnerError

_PYTHON = re.compile(r"^(?:/usr(?:/local)?/bin/)?python(?:3(?:\.\d+)?)?$")
#: How long a terminated process gets to clean up before it is killed.
GRACE_S = 3.0


@dataclass
class PodResult:
    exit_code: int | None
    stdout: str
    message: str = ""
    timed_out: bool = False


class ProcessTable:
    """Running processes, so a workflow deadline or an interrupt can stop them all."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()

    def add(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.procs.add(proc)

    def discard(self, proc: subprocess.Popen) -> None:
        with self.lock:
            self.procs.discard(proc)

    def terminate_all(self) -> None:
        with self.lock:
            procs = list(self.procs)
        for proc in procs:
            _terminate(proc)


def _signal(proc: subprocess.Popen, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, sig)


def _terminate(proc: subprocess.Popen) -> None:
    _signal(proc, signal.SIGTERM)
    timer = threading.Timer(GRACE_S, _signal, (proc, signal.SIGKILL))
    timer.daemon = True
    timer.start()


def resolve_command(command: list[str], command_map: dict[str, str], template: str) -> list[str]:
    if not command:
        raise RunnerError(f"template {template!r}: no command to run")
    head = command_map.get(command[0])
    if head is None and _PYTHON.match(command[0]):
        head = sys.executable
    head = head or command[0]
    if os.sep not in head and shutil.which(head) is None:
        raise RunnerError(f"template {template!r}: command {head!r} is not installed on this machine")
    return [head, *command[1:]]


def mounts_for(template: dict[str, Any], spec_volumes: list[dict], node_dir: Path) -> dict[str, Path]:
    body = template.get("container") or template.get("script") or {}
    volumes = {v["name"]: v for v in [*spec_volumes, *(template.get("volumes") or [])]}
    mounts = {"/tmp": node_dir / "tmp"}
    for mount in body.get("volumeMounts") or []:
        if mount.get("name") not in volumes:
            raise RunnerError(f"template {template.get('name')!r}: volumeMount {mount.get('name')!r} has no volume")
        path = mount["mountPath"].rstrip("/") or "/"
        if path != "/tmp" and not path.startswith("/tmp/"):  # anything under /tmp is private already
            mounts[path] = node_dir / "volumes" / mount["name"]
    for host in mounts.values():
        host.mkdir(parents=True, exist_ok=True)
    return mounts


def kept_paths(workdir: Path) -> list[Path]:
    """Host paths a node still sees inside its private `/tmp`: the workdir, our packages, the interpreter."""
    return [workdir, project.PACKAGES_DIR, Path(sys.prefix)]


def working_dir(template: dict[str, Any], node_dir: Path, mounts: dict[str, Path]) -> Path:
    """Where the process starts: its `workingDir` when a mount (the private `/tmp` included) holds
    it, else the node's own `work/` directory, standing in for the image's filesystem. Never the
    checkout or the caller's directory: a program writing a relative path (upstream examples do)
    writes into the node's directory.
    """
    body = template.get("container") or template.get("script") or {}
    declared = str(body.get("workingDir") or "")
    host = isolation.host_path(declared, mounts) if declared else None
    path = host if host is not None and host != Path(declared) else node_dir / "work"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _argv(template: dict[str, Any], node_dir: Path, mounts: dict[str, Path], command_map: dict[str, str]) -> list[str]:
    name = template.get("name", "?")
    body = template.get("container") or template.get("script") or {}
    argv = resolve_command(list(body.get("command") or []), command_map, name)
    if "script" in template:
        if not body.get("command"):
            raise RunnerError(f"template {name!r}: script without command")
        script = node_dir / "script"
        source = body.get("source", "")
        script.write_text(isolation.rewrite(source, mounts) if isolation.method() == isolation.REWRITE else source)
        script.chmod(0o755)  # `command: [sh, -c]` executes the file itself
        argv.append(str(script))
    return argv + [str(a) for a in body.get("args") or []]


def _environment(template: dict[str, Any], workdir: Path, mounts: dict[str, Path]) -> dict[str, str]:
    body = template.get("container") or template.get("script") or {}
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(project.PACKAGES_DIR), *filter(None, [os.environ.get("PYTHONPATH")])])
    env["KIOSK_WORKDIR"] = str(workdir)
    for item in body.get("env") or []:
        env[item["name"]] = str(item.get("value", ""))
    if isolation.method() == isolation.REWRITE:
        env["TMPDIR"] = str(mounts["/tmp"])
    return env


def _wait(proc: subprocess.Popen, table: ProcessTable, deadline_s: float | None) -> tuple[int, bool]:
    """The exit code, and whether the deadline stopped the process."""
    table.add(proc)
    timed_out = threading.Event()
    timer = None
    if deadline_s is not None:

        def expire() -> None:
            timed_out.set()
            _terminate(proc)

        timer = threading.Timer(max(deadline_s, 0.0), expire)
        timer.daemon = True
        timer.start()
    try:
        return proc.wait(), timed_out.is_set()
    finally:
        table.discard(proc)
        if timer:
            timer.cancel()


def run_pod(
    template: dict[str, Any],
    *,
    node_dir: Path,
    log_path: Path,
    workdir: Path,
    spec_volumes: list[dict],
    command_map: dict[str, str],
    deadline_s: float | None,
    table: ProcessTable,
    cancelled: threading.Event,
) -> tuple[PodResult, dict[str, Path]]:
    """Run an already-substituted container/script template; returns the result and its mounts."""
    mounts = mounts_for(template, spec_volumes, node_dir)
    argv = _argv(template, node_dir, mounts, command_map)
    env = _environment(template, workdir, mounts)
    wrapped = isolation.wrap(argv, mounts, kept_paths(workdir), isolation.method())
    stdout_path = node_dir / "stdout"
    with open(stdout_path, "wb") as out, open(log_path, "ab") as err:
        if cancelled.is_set():
            return PodResult(None, "", "cancelled before start"), mounts
        try:
            proc = subprocess.Popen(
                wrapped,
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=working_dir(template, node_dir, mounts),
                env=env,
                start_new_session=True,
            )
        except OSError as error:
            raise RunnerError(f"template {template.get('name', '?')!r}: cannot start {argv[0]!r}: {error}") from None
        code, timed_out = _wait(proc, table, deadline_s)
    stdout = stdout_path.read_bytes().decode(errors="replace")
    with open(log_path, "ab") as err:  # the node log holds stdout too, like `argo logs`
        err.write(stdout.encode())
    stdout = stdout.removesuffix("\n")
    if timed_out:
        return PodResult(code, stdout, "Pod was active on the node longer than the specified deadline", True), mounts
    if cancelled.is_set() and code != 0:
        return PodResult(code, stdout, "Stopped with strategy 'Terminate'"), mounts
    return PodResult(code, stdout, "" if code == 0 else f"Error (exit code {code})"), mounts


def read_output(path: str, mounts: dict[str, Path]) -> str | None:
    host = isolation.host_path(path, mounts)
    try:
        text = host.read_text(errors="replace")
    except OSError:
        return None
    return text.removesuffix("\n")
