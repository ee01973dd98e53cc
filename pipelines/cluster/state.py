"""Where a local cluster keeps its files, and the record of the processes it started."""

from __future__ import annotations

import json
import os
import signal
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from pipelines.project import default_workdir

#: The processes of a cluster, in start order; `down` stops them in reverse.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "workflow-controller",
    "agent",
    "objectstore",
)


def cluster_dir(workdir: Path | None = None) -> Path:
    return (workdir or default_workdir()) / "cluster"


@dataclass
class ClusterState:
    """`state.json`: ports and PIDs (each PID with its start time, so a reused PID is not ours)."""

    root: Path
    ports: dict[str, int] = field(default_factory=dict)
    pids: dict[str, list[int]] = field(default_factory=dict)  # name -> [pid, start ticks]
    started_s: float = 0.0
    created: list[str] = field(default_factory=list)  # network interfaces `up` created, `down` removes

    @property
    def path(self) -> Path:
        return self.root / "state.json"

    @property
    def kubeconfig(self) -> Path:
        return self.root / "kubeconfig"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    def save(self) -> None:
        body = {k: v for k, v in asdict(self).items() if k != "root"}
        tmp = self.path.with_suffix(".partial")
        tmp.write_text(json.dumps(body, indent=1, sort_keys=True))
        tmp.replace(self.path)

    @classmethod
    def load(cls, root: Path) -> ClusterState:
        path = root / "state.json"
        if not path.is_file():
            return cls(root)
        body = json.loads(path.read_text())
        return cls(
            root, body.get("ports", {}), body.get("pids", {}), body.get("started_s", 0.0), body.get("created", [])
        )

    def record(self, name: str, pid: int) -> None:
        self.pids[name] = [pid, start_ticks(pid) or 0]
        self.save()

    def alive(self, name: str) -> bool:
        entry = self.pids.get(name)
        return entry is not None and len(entry) == 2 and start_ticks(entry[0]) == entry[1]


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks (field 22 of /proc/PID/stat), None when it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie has exited
        return None
    return int(fields[19])


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_group(pid: int, ticks: int, grace_s: float = 10.0) -> None:
    """SIGTERM the process group `pid` leads, then SIGKILL what is left after `grace_s`."""
    if start_ticks(pid) != ticks:
        return
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if start_ticks(pid) != ticks and not _group_alive(pid):
                return
            time.sleep(0.1)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of process group `pgid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def _group_alive(pgid: int) -> bool:
    return bool(group_members(pgid))
