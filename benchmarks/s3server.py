"""The S3 server the benchmarks run against: gofakes3 (tools/gofakes3) in a child process.

moto's ThreadedMotoServer is an emulator in the benchmark's own process: at 100k objects its
ListObjectsV2 rescans the bucket for every page, and per request it burns more CPU than the code
under test, on the same 2 cores. A Go server in its own process measures our code instead.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipelines.tools import find_tool  # noqa: E402

DETAIL = "gofakes3 v1.2.0 S3 server (Go, in-memory backend) on 127.0.0.1 (separate process)"


def gofakes3_binary() -> Path | None:
    """.tools/bin/gofakes3 (built by .ci/install.d/25-gofakes3.sh) or PATH, else None."""
    return find_tool("gofakes3")


class GoFakeS3Process:
    """Start the server on a free loopback port; `endpoint` is its http:// URL.

    With `latency_s`, `slow_endpoint` serves the same objects after holding each request that long,
    in the server (a sleep, no CPU), where a proxy in the benchmark's process would also take CPU
    from the pipeline it measures.
    """

    def __init__(self, binary: Path, *, latency_s: float = 0.0) -> None:
        command = [str(binary), "-host", "127.0.0.1:0"]
        if latency_s:
            command += ["-latency", f"{latency_s * 1000:g}ms"]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.endpoint = self.process.stdout.readline().strip()  # type: ignore[union-attr]
        self.slow_endpoint = self.process.stdout.readline().strip() if latency_s else ""  # type: ignore[union-attr]
        if not self.endpoint.startswith("http://") or (latency_s and not self.slow_endpoint.startswith("http://")):
            raise SystemExit(f"{binary} did not start (exit {self.process.poll()})")

    def cpu_seconds(self) -> float:
        """The server process's CPU so far (user + system): on this machine it shares the cores
        with the code under test, which a remote S3 would not.
        """
        proc = Path(f"/proc/{self.process.pid}")
        fields = (proc / "stat").read_text().rsplit(") ", 1)[1].split()
        ticks = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        # Clock ticks are 10 ms: a short run can read 0. Each live thread's schedstat holds its run
        # time in ns (exited threads' time is only in the ticks): both are lower bounds, take the larger.
        live = sum(int((task / "schedstat").read_text().split()[0]) for task in (proc / "task").iterdir()) / 1e9
        return max(ticks, live)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=60)
