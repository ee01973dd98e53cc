"""What the lane-worker tests share: a seeded run, a lane's command line, its claim log and commits,
and a gate that stops a lane mid-shard (real `python -m steps.infer` processes).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from steps.infer.claims import claims_prefix
from steps.ingest.main import run as ingest
from steps.ingest.params import IngestParams
from testkit import onnx_models as zoo
from tests.fixtures.stepkit import StoreCase, run_step


def seed(case: StoreCase, tmp_path: Path, images: int, shard_size: int, size: int = 24) -> None:
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    for i in range(images):
        store.put_bytes(f"in/{i:04d}.png", zoo.blob_image((size, size), []) if i % 7 == 6 else solid(colours[i % 3]))
    args = [
        f"--input-uri={case.uri}/in",
        f"--output-uri={case.uri}/out",
        f"--run-uri={case.uri}/run",
        f"--shard-size={shard_size}",
        f"--outputs-dir={tmp_path}/ingest",
        f"--s3-endpoint={case.endpoint}",
    ]
    assert run_step("steps.ingest", IngestParams, ingest, args) == 0
    model = tmp_path / "colour.onnx"
    model.write_bytes(zoo.colour_classifier())


def solid(colour: tuple[int, int, int]) -> bytes:
    from PIL import Image

    return zoo.png(Image.new("RGB", (24, 24), colour))


def lane_command(
    case: StoreCase, tmp_path: Path, lane: int, lanes: int, *extra: str, endpoint: str | None = None
) -> list:
    return [
        sys.executable,
        "-m",
        "steps.infer",
        f"--run-uri={case.uri}/run",
        f"--lane={lane}",
        f"--lanes={lanes}",
        f"--model-uri=file://{tmp_path}/colour.onnx",
        f"--output-uri={case.uri}/out",
        f"--outputs-dir={tmp_path}/lane-{lane}",
        f"--s3-endpoint={case.endpoint if endpoint is None else endpoint}",
        "--device=cpu",
        "--batch-size=4",
        "--prefetch-workers=2",
        "--upload-workers=2",
        "--ort-threads=1",
        *extra,
    ]


def start_lane(command: list) -> subprocess.Popen:
    return subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def claim_log(case: StoreCase) -> dict[str, list[dict]]:
    """Per shard: its claim generations in order, each with its body and marks ("done": the shard's
    commit names that generation).
    """
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    log: dict[str, list[dict]] = {}
    commits: dict[str, dict] = {}
    prefix = f"run/{claims_prefix()}"
    for info in store.list(prefix):
        shard, name = info.key[len(prefix) + 1 :].split("/")
        if name == "commit.json":
            commits[shard] = json.loads(store.get_bytes(info.key))
        elif name.count(".") == 1:
            log.setdefault(shard, []).append(json.loads(store.get_bytes(info.key)))
    for shard, claims in log.items():
        claims.sort(key=lambda c: c["generation"])
        commit = commits.get(shard, {})
        for claim in claims:
            base = f"{prefix}/{shard}/g{claim['generation']:04d}"
            claim["done"] = commit.get("status") == "done" and commit.get("generation") == claim["generation"]
            claim["failed"] = store.exists(f"{base}.failed.json")
    return log


def read_commits(case: StoreCase) -> dict[str, dict]:
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    prefix = f"run/{claims_prefix()}"
    found = {}
    for info in store.list(prefix):
        shard, name = info.key[len(prefix) + 1 :].split("/")
        if name == "commit.json":
            found[shard] = json.loads(store.get_bytes(info.key))
    return found


class Gate:
    """Turns one input image into a FIFO, so the lane that reads it blocks there, mid-shard, until
    the test lets it go: a SIGKILL then lands inside that shard however fast or loaded the machine is
    (tiny images on a nearly free model finish a shard between two polls, so waiting on the outputs
    alone could not say where the worker was).
    """

    def __init__(self, store_root: Path, key: str) -> None:
        self.path = store_root / key
        self.data = self.path.read_bytes()
        self.path.unlink()
        os.mkfifo(self.path)
        self._writer: int | None = None

    def reader_blocked(self) -> bool:
        """True once a worker has opened the FIFO to read it (it now waits for a writer). The write end
        is kept open (nothing written) until `release`, so the reader never sees an early EOF.
        """
        if self._writer is None:
            try:
                self._writer = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader yet
                return False
        return True

    def release(self) -> None:
        """After the blocked worker is dead: put the real image back for the workers that follow."""
        if self._writer is not None:
            os.close(self._writer)
        tmp = self.path.with_name(self.path.name + ".restore")
        tmp.write_bytes(self.data)
        os.replace(tmp, self.path)
