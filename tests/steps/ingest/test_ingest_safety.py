"""ingest refuses a run prefix among its inputs before deleting anything, and rejects keys that are not UTF-8."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from testkit import onnx_models as zoo


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


@pytest.mark.parametrize(("outputs", "run"), [("run", "run"), ("run/results", "run"), ("out", "out/run")])
def test_ingest_outputs_in_cleared_run_dirs_refused(store_case, tmp_path, outputs, run):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    image = zoo.blob_image((16, 16), [])
    store.put_bytes("in/results/a.png", image)
    store.put_bytes(f"{outputs}/results/a.png.json", b"{}")  # an earlier run's output of it
    before = _keys(store)
    args = [
        f"--input-uri={store_case.uri}/in",
        f"--output-uri={store_case.uri}/{outputs}",
        f"--run-uri={store_case.uri}/{run}",
        f"--s3-endpoint={store_case.endpoint}",
    ]
    done = _ingest(args, tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"--output-uri={store_case.uri}/{outputs} overlaps" in lines[0], lines
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


def test_ingest_outputs_beside_the_run_files_accepted(tmp_path):
    uri = f"file://{tmp_path}/store"
    open_store(uri).put_bytes("in/a.png", zoo.blob_image((16, 16), []))
    done = _ingest([f"--input-uri={uri}/in", f"--output-uri={uri}/run/outputs", f"--run-uri={uri}/run"], tmp_path)
    assert done.returncode == 0, done.stderr


def test_ingest_non_utf8_file_name_rejected(tmp_path):
    inputs = tmp_path / "store" / "in"
    inputs.mkdir(parents=True)
    image = zoo.blob_image((16, 16), [])
    (inputs / "ok.png").write_bytes(image)
    with open(os.fsencode(inputs) + b"/caf\xe9.png", "wb") as handle:  # Latin-1, as an old camera names it
        handle.write(image)
    before = sorted(os.listdir(os.fsencode(inputs)))
    uri = f"file://{tmp_path}/store"
    done = _ingest([f"--input-uri={uri}/in", f"--output-uri={uri}/out", f"--run-uri={uri}/run"], tmp_path)
    assert done.returncode == 0, done.stderr
    run = open_store(f"{uri}/run")
    (rejected,) = [json.loads(line) for line in run.get_bytes("rejected.jsonl").splitlines()]
    assert rejected["key"] == "caf\\xe9.png" and rejected["reason"].startswith("key is not valid UTF-8")
    assert [json.loads(line)["key"] for line in run.get_bytes("manifest.jsonl").splitlines()] == ["ok.png"]
    shard = run.get_bytes("shards/shard-00000.jsonl").decode("utf-8")  # strict: no surrogate reaches it
    assert [json.loads(line)["key"] for line in shard.splitlines()] == ["ok.png"]
    assert sorted(os.listdir(os.fsencode(inputs))) == before


def test_ingest_s3_key_that_does_not_round_trip_rejected(gofakes3, tmp_path):
    bucket = gofakes3.create_bucket()
    image = zoo.blob_image((16, 16), [])
    gofakes3.put_raw(f"/{bucket}/in/ok.png", image)
    gofakes3.put_raw(f"/{bucket}/in/caf%E9.png", image)  # raw byte 0xe9: listed back as U+FFFD
    store = open_store(f"s3://{bucket}", s3_endpoint=gofakes3.endpoint)
    before = _keys(store)
    uri = f"s3://{bucket}"
    args = [f"--input-uri={uri}/in", f"--output-uri={uri}/out", f"--run-uri={uri}/run"]
    done = _ingest([*args, f"--s3-endpoint={gofakes3.endpoint}"], tmp_path)
    assert done.returncode == 0, done.stderr
    run = open_store(f"{uri}/run", s3_endpoint=gofakes3.endpoint)
    (rejected,) = [json.loads(line) for line in run.get_bytes("rejected.jsonl").splitlines()]
    assert rejected["key"] == "caf\ufffd.png" and "U+FFFD" in rejected["reason"]
    assert [json.loads(line)["key"] for line in run.get_bytes("manifest.jsonl").splitlines()] == ["ok.png"]
    assert [k for k in _keys(store) if k.startswith("in/")] == [k for k in before if k.startswith("in/")]
