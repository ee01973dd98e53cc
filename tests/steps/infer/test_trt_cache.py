"""TensorRT caches persisted under the model's cache prefix (steps/infer/trt_cache.py), on the file
store and the S3 emulator. No TensorRT here: the files stand in for what the EP writes.
"""

from __future__ import annotations

import os

from steps.common.storage import open_store
from steps.infer.trt_cache import cache_uri, persist, restore


def test_cache_uri_sits_beside_the_model_and_names_the_runtime_version():
    assert cache_uri("s3://b/models/det.onnx", "1.31.1") == "s3://b/models/det.cache/tensorrt/ort-1.31.1"
    assert cache_uri("file:///m/det.onnx", "1.31.1") == "file:///m/det.cache/tensorrt/ort-1.31.1"
    assert cache_uri("package://rapidocr_onnxruntime/models/det.onnx", "1.31.1") == ""


def test_engines_built_by_one_pod_are_restored_by_the_next(store_case, tmp_path):
    uri = cache_uri(f"{store_case.uri}/models/det.onnx", "1.31.1")
    first, second = tmp_path / "pod1", tmp_path / "pod2"
    assert restore(uri, str(first), s3_endpoint=store_case.endpoint) == []  # nothing persisted yet
    engine, timing = os.urandom(5000), os.urandom(300)
    (first / "TensorrtExecutionProvider_TRTKernel_graph_main_123_0_sm90.engine").write_bytes(engine)
    (first / "TensorrtExecutionProvider_cache_sm90.timing").write_bytes(timing)
    saved = persist(uri, str(first), s3_endpoint=store_case.endpoint)
    assert len(saved) == 2
    assert persist(uri, str(first), s3_endpoint=store_case.endpoint) == []  # unchanged: no second upload

    restored = restore(uri, str(second), s3_endpoint=store_case.endpoint)
    assert sorted(restored) == sorted(saved)
    assert (second / saved[0]).read_bytes() in (engine, timing)
    assert {p.name: p.read_bytes() for p in second.iterdir()} == {p.name: p.read_bytes() for p in first.iterdir()}
    store = open_store(f"{store_case.uri}/models", s3_endpoint=store_case.endpoint)
    assert sorted(o.key for o in store.list("det.cache")) == sorted(f"det.cache/tensorrt/ort-1.31.1/{n}" for n in saved)


def test_unreachable_cache_storage_only_warns(tmp_path, capsys):
    uri = "s3://bucket/models/det.cache/tensorrt/ort-1.31.1"
    (tmp_path / "x.engine").write_bytes(b"e")
    gone = {"s3_endpoint": "http://127.0.0.1:9", "max_attempts": 1}
    assert restore(uri, str(tmp_path / "in"), **gone) == []
    assert persist(uri, str(tmp_path), **gone) == []
    assert capsys.readouterr().err.count("warning: cannot") == 2
