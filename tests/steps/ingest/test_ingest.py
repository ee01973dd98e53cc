"""The ingest step: checks, rejects, shards, skip-if-done and its Argo outputs, on both stores."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest
from PIL import Image

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from steps.ingest.main import run
from steps.ingest.params import IngestParams
from testkit import onnx_models as zoo
from tests.fixtures.stepkit import read_outputs, run_step


def _jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 100, 50)).save(out, format="JPEG")
    return out.getvalue()


def _inputs(store) -> dict[str, str]:
    """Put one object of each kind; return the reason each bad one must be rejected with (all verify modes)."""
    good = zoo.blob_image((48, 32), [(10, 10, 5)])
    store.put_bytes("uploads/ok-0.png", good)
    store.put_bytes("uploads/ok-1.png", good)
    store.put_bytes("uploads/sub/ok-2.jpg", _jpeg())
    store.put_bytes("uploads/cut.png", good[:-30])  # header intact, pixel data cut
    store.put_bytes("uploads/empty.png", b"")
    store.put_bytes("uploads/huge.png", good + b"\0" * 5000)
    store.put_bytes("uploads/notes.txt", b"plain text, no magic")
    store.put_bytes("uploads2/x.png", good)  # a sibling prefix: never listed
    store.put_bytes("uploads.png", good)
    return {"empty.png": "empty object", "huge.png": "too large"}


@pytest.mark.parametrize("verify", ["none", "header", "decode"])
def test_checks_rejects_and_shards(store_case, tmp_path, verify):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    reasons = _inputs(store)
    if verify != "none":
        reasons["notes.txt"] = "not a known image type"
    if verify == "decode":
        reasons["cut.png"] = "corrupt png"
    args = [
        f"--input-uri={store_case.uri}/uploads",
        f"--output-uri={store_case.uri}/out",
        f"--run-uri={store_case.uri}/run",
        f"--s3-endpoint={store_case.endpoint}",
        "--shard-size=2",
        f"--verify={verify}",
        "--max-bytes=2000",
        f"--outputs-dir={tmp_path}/o",
    ]
    assert run_step("steps.ingest", IngestParams, run, args) == 0

    rejected = {r["key"]: r["reason"] for r in map(json.loads, store.get_bytes("run/rejected.jsonl").splitlines())}
    assert set(rejected) == set(reasons)
    for key, reason in reasons.items():
        assert rejected[key].startswith(reason), (key, rejected[key])
    accepted = sorted({"ok-0.png", "ok-1.png", "sub/ok-2.jpg", "cut.png", "notes.txt"} - set(reasons))
    manifest = [json.loads(line) for line in store.get_bytes("run/manifest.jsonl").splitlines()]
    assert [m["key"] for m in manifest] == accepted and all(m["size"] > 0 and m["etag"] for m in manifest)

    outputs = read_outputs(tmp_path / "o")
    expected = (len(accepted) + 1) // 2
    # Counts only: the shard list lives in storage (the index), never in Argo parameters.
    assert outputs == {"count": str(len(accepted)), "rejected": str(len(reasons)), "shards": str(expected)}
    index = json.loads(store.get_bytes("run/shard-index.json"))
    assert index["count"] == len(accepted) and index["shard_size"] == 2
    assert index["shards"] == [
        {"name": f"shard-{i:05d}", "key": f"shards/shard-{i:05d}.jsonl", "items": min(2, len(accepted) - 2 * i)}
        for i in range(expected)
    ]
    sharded = [
        json.loads(line)
        for i in range(expected)
        for line in store.get_bytes(f"run/shards/shard-{i:05d}.jsonl").splitlines()
    ]
    assert [s["key"] for s in sharded] == accepted
    assert {s["input_uri"] for s in sharded} == {f"{store_case.uri}/uploads"}


def test_skips_done_inputs_unless_forced(tmp_path):
    uri = f"file://{tmp_path}/s"
    store = open_store(uri)
    for i in range(4):
        store.put_bytes(f"in/{i}.png", zoo.blob_image((16, 16), []))
    store.put_bytes("in/out/0.png.json", b"{}")  # outputs inside the input prefix are not inputs
    store.put_bytes("in/out/1.png.json", b"{}")
    args = [
        f"--input-uri={uri}/in",
        f"--output-uri={uri}/in/out",
        f"--run-uri={uri}/run",
        f"--outputs-dir={tmp_path}/o",
    ]
    assert run_step("steps.ingest", IngestParams, run, args) == 0
    keys = [json.loads(line)["key"] for line in store.get_bytes("run/shards/shard-00000.jsonl").splitlines()]
    assert keys == ["2.png", "3.png"]
    done = [json.loads(line) for line in store.get_bytes("run/manifest.jsonl").splitlines()]
    assert [(d["key"], d["status"]) for d in done] == [
        ("0.png", "done"),
        ("1.png", "done"),
        ("2.png", "pending"),
        ("3.png", "pending"),
    ]
    assert run_step("steps.ingest", IngestParams, run, [*args, "--force"]) == 0
    assert read_outputs(tmp_path / "o")["count"] == "4"


def test_outputs_are_counts_and_the_index_is_in_storage(tmp_path):
    uri = f"file://{tmp_path}/s"
    store = open_store(uri)
    image = zoo.blob_image((16, 16), [])
    for i in range(250):
        store.put_bytes(f"in/{i:04d}.png", image)
    args = [
        f"--input-uri={uri}/in",
        f"--output-uri={uri}/out",
        f"--run-uri={uri}/run",
        "--shard-size=100",
        f"--outputs-dir={tmp_path}/o",
        "--verify=none",
    ]
    assert run_step("steps.ingest", IngestParams, run, args) == 0
    assert read_outputs(tmp_path / "o")["shards"] == "3"
    index = json.loads(open_store(f"{uri}/run").get_bytes("shard-index.json"))
    assert [s["items"] for s in index["shards"]] == [100, 100, 50]


def test_workdir_uri_and_one_line_storage_error(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "KIOSK_WORKDIR": str(tmp_path)}
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("uploads/a.png", zoo.blob_image((16, 16), []))
    args = [
        "--input-uri=file://$KIOSK_WORKDIR/store/uploads",
        "--output-uri=file://$KIOSK_WORKDIR/store/out",
        "--run-uri=file://$KIOSK_WORKDIR/store/run",
        f"--outputs-dir={tmp_path}/o",
    ]
    ok = subprocess.run(
        [sys.executable, "-m", "steps.ingest", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == {"count": "1", "rejected": "0", "shards": "1"}

    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "steps.ingest",
            *args[1:],
            "--input-uri=s3://kiosk-nowhere/x",
            "--s3-endpoint=http://127.0.0.1:9",
            "--s3-max-attempts=1",
        ],
        cwd=REPO_ROOT,
        env={**env, "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 1  # unreachable storage is transient: the retryStrategy retries exit 1
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and "storage unreachable" in lines[0] and "s3://kiosk-nowhere/x" in lines[0]


def _ingest(args: list[str], tmp_path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steps.ingest", *args, f"--outputs-dir={tmp_path}/o"],
        cwd=REPO_ROOT,
        # the S3 emulator's dummy credentials, when the test uses it
        env={"PATH": "/usr/bin:/bin", "KIOSK_WORKDIR": str(tmp_path), **_aws_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )


def _aws_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith("AWS_")}


@pytest.mark.parametrize("missing", ["nowhere", "a-file.png"])
def test_a_missing_input_directory_is_a_one_line_error_and_nothing_is_written(tmp_path, missing):
    store = open_store(f"file://{tmp_path}/store")
    store.put_bytes("a-file.png", zoo.blob_image((16, 16), []))
    store.put_bytes("run/shards/shard-00000.jsonl", b"{}\n")  # an earlier run's shard: must survive
    uri = f"file://{tmp_path}/store"
    done = _ingest([f"--input-uri={uri}/{missing}", f"--output-uri={uri}/out", f"--run-uri={uri}/run"], tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"steps.ingest: error: --input-uri={uri}/{missing}: ")
    assert ("does not exist" if missing == "nowhere" else "is not a directory") in lines[0]
    assert [o.key for o in store.list("run")] == ["run/shards/shard-00000.jsonl"]
    assert not (tmp_path / "o").exists()


def test_the_cron_finds_nothing_new_in_a_missing_directory(tmp_path):
    uri = f"file://{tmp_path}/store"
    args = [f"--input-uri={uri}/uploads", f"--output-uri={uri}/out", f"--run-uri={uri}/run", "--missing-input=empty"]
    done = _ingest(args, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shards"] == "0" and read_outputs(tmp_path / "o")["count"] == "0"
    assert "does not exist yet, so nothing is new" in done.stderr


def test_an_empty_directory_is_nothing_new_without_a_warning(tmp_path):
    (tmp_path / "store" / "uploads").mkdir(parents=True)
    uri = f"file://{tmp_path}/store"
    done = _ingest([f"--input-uri={uri}/uploads", f"--output-uri={uri}/out", f"--run-uri={uri}/run"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["shards"] == "0" and "warning" not in done.stderr


def test_an_empty_s3_prefix_is_a_warning_in_the_summary(s3_bucket, tmp_path):
    uri = f"{s3_bucket.uri}/nothing-here"
    args = [
        f"--input-uri={uri}",
        f"--output-uri={uri}-out",
        f"--run-uri={uri}-run",
        f"--s3-endpoint={s3_bucket.endpoint}",
    ]
    done = _ingest(args, tmp_path)
    assert done.returncode == 0, done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert summary.startswith("steps.ingest: 0 to process") and "warning: no object under" in summary
