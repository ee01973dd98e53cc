"""Key layout of a run under --run-uri, shared by ingest, infer and report (one place for names)."""

from __future__ import annotations

MANIFEST = "manifest.jsonl"
REJECTED = "rejected.jsonl"
SHARDS_DIR = "shards"
METRICS_DIR = "metrics"  # infer: metrics/shard-00000.json
RESULTS_DIR = "results"  # infer: results/shard-00000.jsonl, one line per item
ATTEMPTS_DIR = "attempts"  # infer: attempts/shard-00000.json, present once a shard has started
REPORT_DIR = "report"
SHARD_INDEX = "shard-index.json"  # ingest: {"shards": [{"name", "key", "items"}...], "count": N}
LANES_DIR = "lanes"  # infer lanes: lanes/lane-0000-a0-<token>.json, one per lane process (requests, times)
QUEUE_DIR = "queue"  # infer lanes: queue/claims/<shard>/g0000.json (see steps/infer/claims.py)


def shard_key(index: int) -> str:
    return f"{SHARDS_DIR}/shard-{index:05d}.jsonl"


def shard_name(shard_uri: str) -> str:
    """'shard-00000' from any shard URI."""
    name = shard_uri.rstrip("/").rsplit("/", 1)[-1]
    return name[: -len(".jsonl")] if name.endswith(".jsonl") else name


def run_uri_of(shard_uri: str) -> str:
    """<run> from <run>/shards/shard-00000.jsonl; '' when the shard is not in that layout."""
    parent, _, _ = shard_uri.rstrip("/").rpartition("/")
    run, _, folder = parent.rpartition("/")
    return run if folder == SHARDS_DIR and run.partition("://")[2] else ""


def result_key(key: str) -> str:
    """Per-item result JSON under --output-uri, written last: its presence means the item is done."""
    return f"{key}.json"


def mask_key(key: str) -> str:
    """Per-item segmentation mask PNG under --output-uri."""
    return f"{key}.mask.png"
