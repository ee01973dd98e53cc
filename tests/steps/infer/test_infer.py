"""The infer step on real ONNX models, over the file store and the S3 emulator."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from threading import Thread

import numpy as np
import pytest
from PIL import Image

from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from steps.infer.main import run
from steps.infer.params import InferParams
from testkit import onnx_models as zoo
from tests.fixtures.stepkit import StoreCase, read_outputs, run_step
from tests.fixtures.waiting import wait_until
from tests.steps.infer.infer_case import BLOBS, infer_args, write_shard

PPOCR = "package://rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx"


@pytest.fixture
def blob_model(tmp_path) -> str:
    path = tmp_path / "models" / "blobs.onnx"
    path.parent.mkdir()
    path.write_bytes(zoo.blob_segmenter())
    return f"file://{path}"


def test_segmentation_outputs_failures_and_metrics(store_case, blob_model, tmp_path):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    for key, blobs in BLOBS.items():
        store.put_bytes(f"in/{key}", zoo.blob_image((160, 100), blobs))
    good = zoo.blob_image((64, 64), [(32, 32, 10)])
    store.put_bytes("in/truncated.png", good[: len(good) // 2])
    store.put_bytes("in/notes.txt", b"not an image")
    deep = Image.fromarray(np.full((32, 32), 40000, np.uint16))
    store.put_bytes("in/sixteen-bit.png", zoo.png(deep))
    keys = [*BLOBS, "truncated.png", "notes.txt", "sixteen-bit.png", "missing.png"]
    shard = write_shard(store, keys, f"{store_case.uri}/in")

    code = run_step("steps.infer", InferParams, run, infer_args(store_case, shard, blob_model, tmp_path / "o1"))
    assert code == 2  # 4 of 7 failed > 5%, all bad inputs: a retry cannot help (permanent exit code)
    assert read_outputs(tmp_path / "o1") == {"processed": "3", "failed": "4"}

    for key, blobs in BLOBS.items():
        result = json.loads(store.get_bytes(f"out/{key}.json"))
        mask = np.asarray(Image.open(io.BytesIO(store.get_bytes(f"out/{key}.mask.png"))).convert("L"))
        assert mask.shape == (100, 160) and result["width"] == 160
        assert mask[5, 5] == 0
        for cx, cy, _r in blobs:
            assert mask[cy, cx] == 255
        found = sorted((b["x0"], b["y0"], b["x1"], b["y1"]) for b in result["boxes"])
        expected = sorted((cx - r, cy - r, cx + r + 1, cy + r + 1) for cx, cy, r in blobs)
        assert len(found) == len(expected)
        for box, want in zip(found, expected, strict=True):
            assert max(abs(a - b) for a, b in zip(box, want, strict=True)) <= 3, (box, want)

    metrics = json.loads(store.get_bytes("run/metrics/shard-00000.json"))
    reasons = {f["key"]: f["reason"] for f in metrics["failures"]}
    assert set(reasons) == {"truncated.png", "notes.txt", "sixteen-bit.png", "missing.png"}
    assert "corrupt png" in reasons["truncated.png"]
    assert "not a known image type" in reasons["notes.txt"]
    assert "unsupported pixel format I;16" in reasons["sixteen-bit.png"]
    assert reasons["missing.png"] == "input not found"
    assert metrics["processed"] == 3 and metrics["failed"] == 4 and metrics["providers"] == ["CPUExecutionProvider"]
    assert set(metrics["stage_seconds"]) == {"download", "decode", "infer", "upload"}
    assert metrics["latency_ms"]["p50"] > 0 and metrics["images_per_second"] > 0
    results = [json.loads(line) for line in store.get_bytes("run/results/shard-00000.jsonl").splitlines()]
    assert sorted(r["key"] for r in results) == sorted(keys)
    assert not store.exists("out/truncated.png.json")

    # Same shard, tolerant threshold: the three good items are redone only if missing.
    code = run_step(
        "steps.infer",
        InferParams,
        run,
        infer_args(store_case, shard, blob_model, tmp_path / "o2", "--max-failure-ratio=0.6"),
    )
    assert code == 0
    again = json.loads(store.get_bytes("run/metrics/shard-00000.json"))
    assert again["resumed"] == 3 and again["processed_now"] == 0 and again["failed"] == 4


def test_default_model_finds_rendered_text(tmp_path):
    """PP-OCRv4 det shipped by rapidocr-onnxruntime, with an empty --model-spec (built-in spec)."""
    case = StoreCase("file", f"file://{tmp_path}/store")
    store = open_store(case.uri)
    lines = [(16, 20, "KIOSK 2026"), (16, 100, "batch inference")]
    store.put_bytes("in/page.png", zoo.text_image((320, 160), lines))
    shard = write_shard(store, ["page.png"], f"{case.uri}/in")
    assert run_step("steps.infer", InferParams, run, infer_args(case, shard, PPOCR, tmp_path / "o")) == 0
    result = json.loads(store.get_bytes("out/page.png.json"))
    assert result["kind"] == "segmentation" and len(result["boxes"]) == len(lines)
    for (x, y, text), box in zip(lines, sorted(result["boxes"], key=lambda b: b["y0"]), strict=True):
        tx0, ty0, tx1, ty1 = zoo.text_bbox((x, y), text)
        inter = max(0, min(tx1, box["x1"]) - max(tx0, box["x0"])) * max(0, min(ty1, box["y1"]) - max(ty0, box["y0"]))
        union = (tx1 - tx0) * (ty1 - ty0) + (box["x1"] - box["x0"]) * (box["y1"] - box["y0"]) - inter
        assert inter / union > 0.5, (text, box, (tx0, ty0, tx1, ty1))


def test_classification_top_k_and_wrong_size(tmp_path):
    case = StoreCase("file", f"file://{tmp_path}/store")
    store = open_store(case.uri)
    (tmp_path / "clf.onnx").write_bytes(zoo.colour_classifier())
    colours = {"r.png": (250, 10, 10), "g.png": (10, 250, 10), "b.png": (10, 10, 250)}
    for key, rgb in colours.items():
        store.put_bytes(f"in/{key}", zoo.png(Image.new("RGB", (32, 32), rgb)))
    store.put_bytes("in/big.png", zoo.png(Image.new("RGB", (40, 40), (250, 10, 10))))
    shard = write_shard(store, [*colours, "big.png"], f"{case.uri}/in")
    spec = '{"resize": {"mode": "none", "width": 32, "height": 32}}'
    code = run_step(
        "steps.infer",
        InferParams,
        run,
        infer_args(case, shard, f"file://{tmp_path}/clf.onnx", tmp_path / "o", f"--model-spec={spec}"),
    )
    assert code == 2
    for key, label in zip(colours, zoo.CLASSIFIER_LABELS, strict=True):
        top = json.loads(store.get_bytes(f"out/{key}.json"))["top_k"]
        assert top[0]["label"] == label and len(top) == 2 and top[0]["score"] > 0.9
    failures = json.loads(store.get_bytes("run/metrics/shard-00000.json"))["failures"]
    assert failures == [{"key": "big.png", "reason": "wrong size 40x40: the model needs 32x32"}]


def _cli(args: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "steps.infer", *args],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
        **kwargs,
    )


@pytest.mark.parametrize("model", ["garbage", "truncated", "vector", "missing"])
def test_bad_model_fails_the_step_at_once(tmp_path, model):
    case = StoreCase("file", f"file://{tmp_path}/store")
    store = open_store(case.uri)
    store.put_bytes("in/a.png", zoo.blob_image((64, 64), []))
    shard = write_shard(store, ["a.png"], f"{case.uri}/in")
    path = tmp_path / f"{model}.onnx"
    content = {
        "garbage": b"\x08\x07not a protobuf" * 10,
        "truncated": zoo.blob_segmenter()[:300],
        "vector": zoo.vector_model(),
    }
    if model in content:
        path.write_bytes(content[model])
    result = _cli(infer_args(case, shard, f"file://{path}", tmp_path / "o"))
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("steps.infer: error:") and f"file://{path}" in lines[0]
    assert ("incompatible model" if model == "vector" else "cannot load model") in lines[0]
    assert not store.exists("out/a.png.json")


def test_gpu_requested_but_cuda_absent_fails_loudly(tmp_path, blob_model):
    case = StoreCase("file", f"file://{tmp_path}/store")
    store = open_store(case.uri)
    store.put_bytes("in/a.png", zoo.blob_image((64, 64), [(32, 32, 8)]))
    shard = write_shard(store, ["a.png"], f"{case.uri}/in")
    args = [a for a in infer_args(case, shard, blob_model, tmp_path / "o") if not a.startswith("--device")]
    result = _cli([*args, "--device=cuda"])
    assert result.returncode == 2
    assert "CUDA is not active" in result.stderr and "--allow-cpu-fallback" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not store.exists("out/a.png.json")

    result = _cli([*args, "--device=tensorrt", "--allow-cpu-fallback=true", f"--trt-cache-dir={tmp_path}/trt"])
    assert result.returncode == 0, result.stderr
    assert "warning" in result.stderr and store.exists("out/a.png.json")
    assert json.loads(store.get_bytes("run/metrics/shard-00000.json"))["providers"] == ["CPUExecutionProvider"]


def test_resume_after_crash_no_duplicates_no_gaps(faulty_s3, blob_model, tmp_path):
    case = StoreCase("s3", faulty_s3.uri, faulty_s3.endpoint)
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    keys = [f"img-{i:02d}.png" for i in range(12)]
    for i, key in enumerate(keys):
        store.put_bytes(f"in/{key}", zoo.blob_image((48, 48), [(24, 24, 4 + i % 5)]))
    shard = write_shard(store, keys, f"{case.uri}/in")
    # A gate, not a delay: six results go through, the seventh write waits until the step is killed.
    faulty_s3.proxy.hold(after=6, match=lambda method, path: method == "PUT" and path.endswith(".png.json"))
    args = infer_args(case, shard, blob_model, tmp_path / "o", "--upload-workers=1", "--batch-size=1")
    proc = subprocess.Popen([sys.executable, "-m", "steps.infer", *args], cwd=REPO_ROOT, stderr=subprocess.PIPE)
    wait_until(lambda: faulty_s3.proxy.held or proc.poll() is not None, 120, "the step's seventh result write")
    proc.kill()
    proc.wait()
    proc.stderr.close()
    faulty_s3.proxy.clear()
    first = {o.key: o for o in store.list("out") if o.key.endswith(".json")}
    assert len(first) == 6, "the crash must come mid-shard"
    assert not store.exists("run/metrics/shard-00000.json")

    faulty_s3.proxy.clear()
    assert run_step("steps.infer", InferParams, run, args) == 0
    after = {o.key: o for o in store.list("out") if o.key.endswith(".json")}
    assert sorted(after) == sorted(f"out/{k}.json" for k in keys)  # no gaps
    for key, info in first.items():  # no duplicates: finished items were not written again
        assert after[key].last_modified == info.last_modified and after[key].etag == info.etag
    metrics = json.loads(store.get_bytes("run/metrics/shard-00000.json"))
    assert metrics["resumed"] == len(first) and metrics["processed_now"] == len(keys) - len(first)
    assert metrics["processed"] == len(keys) and metrics["failed"] == 0


@pytest.mark.parametrize("kind", ["reset", "503", "truncate"])
def test_transient_s3_faults_lose_nothing(faulty_s3, blob_model, tmp_path, kind):
    case = StoreCase("s3", faulty_s3.uri, faulty_s3.endpoint)
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    keys = [f"f{i}.png" for i in range(6)]
    for key in keys:
        store.put_bytes(f"in/{key}", zoo.blob_image((40, 40), [(20, 20, 6)]))
    shard = write_shard(store, keys, f"{case.uri}/in")
    faulty_s3.proxy.fail_every(4, kind)
    assert run_step("steps.infer", InferParams, run, infer_args(case, shard, blob_model, tmp_path / "o")) == 0
    assert faulty_s3.proxy.injected >= 3
    faulty_s3.proxy.clear()
    metrics = json.loads(store.get_bytes("run/metrics/shard-00000.json"))
    assert metrics["processed"] == len(keys) and metrics["failed"] == 0
    assert all(store.exists(f"out/{k}.mask.png") and store.exists(f"out/{k}.json") for k in keys)


def test_metrics_are_pushed_to_a_pushgateway(tmp_path, blob_model):
    received: list[tuple[str, str, bytes]] = []

    class Gateway(BaseHTTPRequestHandler):
        def do_PUT(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.command, self.path, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_POST = do_PUT

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    Thread(target=server.serve_forever, daemon=True).start()
    try:
        case = StoreCase("file", f"file://{tmp_path}/store")
        store = open_store(case.uri)
        store.put_bytes("in/a.png", zoo.blob_image((64, 64), [(32, 32, 8)]))
        shard = write_shard(store, ["a.png"], f"{case.uri}/in")
        gateway = f"127.0.0.1:{server.server_address[1]}"
        args = [*infer_args(case, shard, blob_model, tmp_path / "o"), f"--pushgateway={gateway}"]
        assert run_step("steps.infer", InferParams, run, args) == 0
        assert run_step("steps.infer", InferParams, run, [*args, "--env=dev"]) == 0
    finally:
        server.shutdown()
    # The env, first in the grouping key, keeps envs sharing the Pushgateway apart.
    assert [(m, p) for m, p, _ in received] == [
        ("PUT", "/metrics/job/kiosk_infer/run/run/shard/shard-00000"),
        ("PUT", "/metrics/job/kiosk_infer/env/dev/run/run/shard/shard-00000"),
    ]
    body = received[0][2].decode()
    assert 'kiosk_infer_items_total{status="ok"} 1.0' in body
    assert 'kiosk_infer_provider_active{provider="CPUExecutionProvider"} 1.0' in body


def test_failure_ratio_exit_code_says_whether_a_retry_can_help(faulty_s3, blob_model, tmp_path):
    """Storage failures exit 1 (Argo retries; the rerun resumes); bad images alone exit 2 (permanent)."""
    inputs = open_store(faulty_s3.uri, s3_endpoint=faulty_s3.endpoint)
    keys = [f"t{i}.png" for i in range(3)]
    for key in keys:
        inputs.put_bytes(f"in/{key}", zoo.blob_image((48, 48), [(24, 24, 6)]))
    # Shard and outputs on the file store, inputs behind the faulty proxy: only downloads fail.
    local = StoreCase("file", f"file://{tmp_path}/store", faulty_s3.endpoint)
    shard = write_shard(open_store(local.uri), keys, f"{faulty_s3.uri}/in")
    faulty_s3.proxy.fail_every(1)
    args = infer_args(local, shard, blob_model, tmp_path / "o", "--s3-max-attempts=1")
    assert run_step("steps.infer", InferParams, run, args) == 1
    faulty_s3.proxy.clear()
    assert run_step("steps.infer", InferParams, run, args) == 0  # the retry Argo makes succeeds
