"""What the infer step's tests share: a shard file of known keys, and the step's flags for a case."""

from __future__ import annotations

import json

from tests.fixtures.stepkit import StoreCase

#: Images by key, each with its blobs (x, y, radius) for the blob segmenter.
BLOBS = {"a.png": [(40, 40, 15), (100, 70, 20)], "deep/b.png": [(60, 30, 12)], "c.png": []}


def write_shard(store, keys: list[str], input_uri: str, name: str = "shard-00000") -> str:
    """Write a shard file listing `keys` under `input_uri`; its URI."""
    lines = "".join(json.dumps({"key": k, "input_uri": input_uri, "size": 1, "etag": ""}) + "\n" for k in keys)
    store.put_bytes(f"run/shards/{name}.jsonl", lines.encode())
    return store.uri_for(f"run/shards/{name}.jsonl")


def infer_args(case: StoreCase, shard: str, model: str, outputs_dir, *extra: str) -> list[str]:
    return [
        f"--shard-uri={shard}",
        f"--model-uri={model}",
        f"--output-uri={case.uri}/out",
        f"--outputs-dir={outputs_dir}",
        f"--s3-endpoint={case.endpoint}",
        "--device=cpu",
        "--batch-size=2",
        "--prefetch-workers=2",
        "--upload-workers=2",
        "--ort-threads=1",
        *extra,
    ]
