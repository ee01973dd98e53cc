"""Exit codes of every storage-touching step, from real processes: 1 when storage is unreachable or
answers 5xx (a retry can help, and the rendered retryStrategy retries exit 1), 2 for a bad URI
(malformed, unknown scheme, a path or bucket that does not exist), which no retry can fix.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT


def _closed_port() -> int:
    with socket.socket() as sock:  # free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _commands(store: str, tmp: str) -> dict[str, list[str]]:
    """One command line per step, every storage URI under `store`."""
    return {
        "infer-lane": [
            "steps.infer",
            f"--run-uri={store}/run",
            "--lane=0",
            "--lanes=1",
            f"--model-uri={store}/m.onnx",
            f"--output-uri={store}/out",
        ],
        "infer-shard": [
            "steps.infer",
            f"--shard-uri={store}/run/shards/s.jsonl",
            f"--model-uri={store}/m.onnx",
            f"--output-uri={store}/out",
        ],
        "ingest": ["steps.ingest", f"--input-uri={store}/in", f"--output-uri={store}/out", f"--run-uri={store}/run"],
        "report": ["steps.report", f"--run-uri={store}/run", f"--output-uri={store}/out"],
        "cleanup": ["steps.cleanup", f"--store={store}", "--prefix=uploads/", "--older-than=3d", "--no-dry-run"],
    }


STEPS = list(_commands("s3://x", "/t"))


def _run(argv: list[str], tmp_path, endpoint: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"}
    extra = [f"--s3-endpoint={endpoint}", "--s3-max-attempts=2"] if endpoint else []
    return subprocess.run(
        [sys.executable, "-m", *argv, *extra, f"--outputs-dir={tmp_path}/outputs"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _one_line(done: subprocess.CompletedProcess, step: str) -> str:
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{step}: error: "), done.stderr[-3000:]
    return lines[0]


@pytest.mark.parametrize("name", STEPS)
def test_unreachable_storage_exits_1(name, tmp_path):
    argv = _commands("s3://kiosk-bucket", str(tmp_path))[name]
    done = _run(argv, tmp_path, endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert done.returncode == 1, (name, done.stderr[-3000:])
    assert "storage unreachable" in _one_line(done, argv[0])


@pytest.mark.parametrize("name", STEPS)
def test_storage_answering_503_exits_1(name, tmp_path, faulty_s3):
    faulty_s3.proxy.fail_every(1, "503")
    argv = _commands(faulty_s3.uri, str(tmp_path))[name]
    done = _run(argv, tmp_path, endpoint=faulty_s3.endpoint)
    assert done.returncode == 1, (name, done.stderr[-3000:])
    assert "ServiceUnavailable" in _one_line(done, argv[0]) or "503" in done.stderr


BAD = {
    "malformed": ("s3://b", "bad bucket name"),  # S3 bucket names have 3 to 63 characters
    "scheme": ("ftp://host/dir", "unsupported storage URI"),
    # A missing bucket: a HEAD of one object answers a bare 404, so the single-shard mode names the shard.
    "no-bucket": ("s3://kiosk-no-such-bucket", "does not exist|not found"),
}
# Every step meets a missing bucket; URI parsing is shared, so two steps cover the malformed ones.
CASES = [(name, "no-bucket") for name in STEPS] + [
    (n, k) for n in ("infer-lane", "ingest") for k in ("malformed", "scheme")
]


@pytest.mark.parametrize(("name", "case"), CASES)
def test_bad_storage_uri_exits_2(name, case, tmp_path, s3_server):
    store, wanted = BAD[case]
    argv = _commands(store, str(tmp_path))[name]
    done = _run(argv, tmp_path, endpoint=s3_server.endpoint)
    assert done.returncode == 2, (name, done.stderr[-3000:])
    assert re.search(wanted, _one_line(done, argv[0])), done.stderr


@pytest.mark.parametrize("name", ["infer-lane", "infer-shard", "ingest", "report"])
def test_missing_file_path_exits_2_and_writes_nothing(name, tmp_path):
    missing = tmp_path / "nowhere"
    argv = _commands(f"file://{missing}", str(tmp_path))[name]
    done = _run(argv, tmp_path)
    assert done.returncode == 2, (name, done.stderr[-3000:])
    _one_line(done, argv[0])
    assert not missing.exists() or not any(p.is_file() for p in missing.rglob("*")), list(missing.rglob("*"))
