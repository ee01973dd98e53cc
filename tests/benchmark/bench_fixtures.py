"""Fixtures and helpers for the synth and benchmark tests: synth images, a real measured sweep, and a
live Prometheus that scrapes a Pushgateway, both on 127.0.0.1 at free ports.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from steps.common.storage import open_store
from steps.synth.main import run as synth
from steps.synth.params import SynthParams
from tests.benchmark.bench_workload import run_sweep_point, session
from tests.conftest import require_tool

# Small on purpose: the CI machine is 2 shared cores. Three configurations give the plots lines.
SWEEP = [(2, 6, 1), (4, 6, 1), (4, 6, 2)]
IMAGES, SIZE = 12, 128


@dataclass(frozen=True)
class Sweep:
    root: Path
    runs_uri: str
    summaries: dict[str, dict]  # config name -> the summary the run wrote


def make_images(root: Path, count: int = IMAGES, size: int = SIZE, seed: int = 7) -> tuple[str, list[str]]:
    uri = f"file://{root}/images"
    synth(
        SynthParams(
            output_uri=uri,
            count=count,
            width=size,
            height=size,
            seed=seed,
            workers=1,
            outputs_dir=str(root / "synth-outputs"),
        )
    )
    return uri, sorted(info.key for info in open_store(uri).list())


def make_sweep(
    root: Path, points=SWEEP, extra_infer_seconds: float = 0.0, pusher=None, count: int = IMAGES, size: int = SIZE
) -> Sweep:
    images_uri, keys = make_images(root, count, size)
    images, model = open_store(images_uri), session()
    summaries = {}
    for batch, shard, parallelism in points:
        name = f"bs{batch}-ss{shard}-p{parallelism}"
        summaries[name] = run_sweep_point(
            images,
            keys,
            open_store(f"file://{root}/runs/{name}"),
            open_store(f"file://{root}/outputs/{name}"),
            model,
            batch,
            shard,
            parallelism,
            extra_infer_seconds=extra_infer_seconds,
            pusher=pusher,
        )
    return Sweep(root, f"file://{root}/runs", summaries)


@pytest.fixture(scope="session")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Sweep:
    """Three configurations of a real (CPU) PP-OCRv4 detection run over synth images."""
    return make_sweep(tmp_path_factory.mktemp("sweep"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} not ready at {url} after {seconds} s")


@dataclass(frozen=True)
class PromStack:
    url: str  # Prometheus, http://127.0.0.1:<port>
    gateway: str  # Pushgateway, 127.0.0.1:<port>

    def query(self, promql: str) -> list[dict]:
        data = urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{data}", timeout=5) as response:
            return json.load(response)["data"]["result"]

    def wait_for(self, promql: str, value: float, seconds: float = 20) -> None:
        """Until Prometheus has scraped `value` for `promql` (pushes become visible one scrape later)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            result = self.query(promql)
            if result and float(result[0]["value"][1]) == value:
                return
            time.sleep(0.2)
        raise AssertionError(f"Prometheus never showed {promql} == {value}")


@pytest.fixture(scope="session")
def prom_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PromStack]:
    prometheus, pushgateway = require_tool("prometheus"), require_tool("prometheus-pushgateway")
    root = tmp_path_factory.mktemp("prometheus")
    gateway = f"127.0.0.1:{free_port()}"
    config = root / "prometheus.yml"
    # 1 s scrapes so a run of a few seconds has several samples in its window.
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "scrape_configs:\n"
        f"  - job_name: pushgateway\n    honor_labels: true\n    static_configs: [{{targets: ['{gateway}']}}]\n"
    )
    address = f"127.0.0.1:{free_port()}"
    log = (root / "log.txt").open("w")
    processes = [
        subprocess.Popen([str(pushgateway), f"--web.listen-address={gateway}"], stdout=log, stderr=log),
        subprocess.Popen(
            [
                str(prometheus),
                f"--config.file={config}",
                f"--storage.tsdb.path={root / 'data'}",
                f"--web.listen-address={address}",
            ],
            stdout=log,
            stderr=log,
        ),
    ]
    try:
        _wait_http(f"http://{gateway}/-/ready", processes[0], "pushgateway")
        _wait_http(f"http://{address}/-/ready", processes[1], "prometheus")
        yield PromStack(f"http://{address}", gateway)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
