"""`--output-layout per-shard` (2 PUTs per shard) against the per-image default (2 PUTs per image),
and the storage request counts in the shard metrics, over the file store and the S3 emulator.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from steps.common.storage import open_store
from steps.infer import shard_output
from steps.infer.main import run
from steps.infer.params import InferParams
from testkit import onnx_models as zoo
from tests.fixtures.stepkit import run_step
from tests.steps.infer.infer_case import BLOBS, infer_args, write_shard


@pytest.fixture
def blob_model(tmp_path) -> str:
    path = tmp_path / "models" / "blobs.onnx"
    path.parent.mkdir()
    path.write_bytes(zoo.blob_segmenter())
    return f"file://{path}"


def _run(case, shard, model, out, *extra) -> tuple[int, dict]:
    code = run_step("steps.infer", InferParams, run, infer_args(case, shard, model, out, *extra))
    store = open_store(case.uri, s3_endpoint=case.endpoint)
    return code, json.loads(store.get_bytes("run/metrics/shard-00000.json"))


def test_per_shard_layout_matches_per_image_results_with_two_puts(store_case, blob_model, tmp_path):
    store = open_store(store_case.uri, s3_endpoint=store_case.endpoint)
    for key, blobs in BLOBS.items():
        store.put_bytes(f"in/{key}", zoo.blob_image((160, 100), blobs))
    store.put_bytes("in/bad.png", b"not an image")
    keys = [*BLOBS, "bad.png"]
    shard = write_shard(store, keys, f"{store_case.uri}/in")
    tolerant = "--max-failure-ratio=0.5"

    code, per_image = _run(store_case, shard, blob_model, tmp_path / "a", tolerant)
    assert code == 0 and per_image["output_layout"] == "per-image"
    assert per_image["requests"] == {"get": 4, "put": 6, "head": 0}  # 3 good images x (mask + JSON)

    out = f"{store_case.uri}/shards-out"
    code, per_shard = _run(
        store_case, shard, blob_model, tmp_path / "b", tolerant, f"--output-uri={out}", "--output-layout=per-shard"
    )
    assert code == 0 and per_shard["processed"] == 3 and per_shard["failed"] == 1
    # 1 HEAD: the shard ran before (the per-image run), so the step checks for a finished shard first.
    assert per_shard["requests"] == {"get": 4, "put": 2, "head": 1}
    shards = open_store(out, s3_endpoint=store_case.endpoint)
    assert sorted(o.key for o in shards.list()) == ["shards/shard-00000.jsonl", "shards/shard-00000.masks"]
    records = [json.loads(line) for line in shards.get_bytes("shards/shard-00000.jsonl").splitlines()]
    assert [r["key"] for r in records] == sorted(BLOBS)
    blob = shards.get_bytes("shards/shard-00000.masks")
    for record in records:
        want = json.loads(store.get_bytes(f"out/{record['key']}.json"))
        mask = blob[record["mask_offset"] : record["mask_offset"] + record["mask_length"]]
        assert mask == store.get_bytes(f"out/{record['key']}.mask.png")
        assert np.asarray(Image.open(io.BytesIO(mask))).shape == (100, 160)
        assert record["mask"] == shards.uri_for("shards/shard-00000.masks")
        assert {k: v for k, v in record.items() if not k.startswith("mask")} == {
            k: v for k, v in want.items() if k != "mask"
        }

    # A retry of a finished shard skips it with one HEAD, and writes nothing.
    code, again = _run(
        store_case, shard, blob_model, tmp_path / "c", tolerant, f"--output-uri={out}", "--output-layout=per-shard"
    )
    assert code == 0 and again["resumed"] == 4 and again["processed_now"] == 0
    assert again["requests"] == {"get": 0, "put": 0, "head": 1}


def test_per_shard_publish_leaves_one_jsonl_per_shard(tmp_path):
    # Generations 0 and 2 died (or were refused) with their pairs written; generation 1 committed.
    store = open_store(f"file://{tmp_path}/out")
    for generation in range(3):
        for key in shard_output.staged_keys("shard-00000", generation):
            store.put_bytes(key, f"g{generation} {key}".encode())
    published = ["shards/shard-00000.g0001.masks", "shards/shard-00000.jsonl"]
    assert shard_output.publish(store, "shard-00000", 1, generations=4) == "shards/shard-00000.jsonl"
    assert sorted(o.key for o in store.list("shards")) == published
    assert store.get_bytes("shards/shard-00000.jsonl") == b"g1 shards/shard-00000.g0001.jsonl"
    assert shard_output.publish(store, "shard-00000", 1, generations=4) is None  # a second publisher
    assert sorted(o.key for o in store.list("shards")) == published
