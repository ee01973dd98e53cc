"""ingest refuses a run prefix among its inputs before deleting anything, and rejects keys that are not UTF-8."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from tests.fixtures import onnx_models as zoo


def _ingest(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", **{k: v for k, v in os.environ.items() if k.startswith("AWS_")}}
    return subprocess.run(
        [sys.executable, "-m", "steps.ingest", *args, f"--outputs-dir={tmp_path}/o"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _keys(store) -> list[str]:
    return [o.key for o in store.list()]


#: (input prefix, run prefix) under one store root: equal, run inside inputs, inputs inside run,
#: and spellings that normalise to those (a trailing slash, '//' in a file path).
_OVERLAPS = [
    ("in", "in"),
    ("in/", "in"),
    ("in", "in/run"),
    ("in/results", "in"),
    ("in/shards", "in"),
]


@pytest.mark.parametrize(("inputs", "run"), _OVERLAPS)
def test_ingest_overlapping_run_uri_refused_before_deleting(store_case, tmp_path, inputs, run):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    image = zoo.blob_image((16, 16), [])
    for key in ("in/a.png", "in/results/b.png", "in/shards/shard-00000.jsonl", "in/run/shards/c.png"):
        store.put_bytes(key, image)
    before = _keys(store)
    args = [
        f"--input-uri={store_case.uri}/{inputs}",
        f"--output-uri={store_case.uri}/out",
        f"--run-uri={store_case.uri}/{run}",
        f"--s3-endpoint={store_case.endpoint}",
    ]
    done = _ingest(args, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"steps.ingest: error: --run-uri={store_case.uri}/{run} overlaps --input-uri=")
    assert "nothing was deleted" in lines[0]
    assert _keys(store) == before
    assert not (tmp_path / "o").exists()


def test_ingest_run_uri_through_a_symlink_into_the_inputs_refused(tmp_path):
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("in/shards/shard-00000.jsonl", b"an input that happens to sit where run files go\n")
    (tmp_path / "runs").symlink_to(tmp_path / "store" / "in")
    before = _keys(store)
    uri = f"file://{tmp_path}"
    done = _ingest([f"--input-uri={uri}/store/in", f"--output-uri={uri}/out", f"--run-uri={uri}/runs"], tmp_path)
    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "overlaps --input-uri" in done.stderr
    assert _keys(store) == before


@pytest.mark.parametrize("run", ["in2", "run/in"])
def test_ingest_sibling_run_uri_accepted(store_case, tmp_path, run):
    # 'in2' shares a string prefix with 'in' but not a directory; 'run/in' ends like it.
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    store.put_bytes("in/a.png", zoo.blob_image((16, 16), []))
    args = [
        f"--input-uri={store_case.uri}/in",
        f"--output-uri={store_case.uri}/out",
        f"--run-uri={store_case.uri}/{run}",
        f"--s3-endpoint={store_case.endpoint}",
    ]
    done = _ingest(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["count"] == "1"
