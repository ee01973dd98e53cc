"""Shard files of a run: reading shard JSONL and the index, writing a shard's results and metrics."""

from __future__ import annotations

import json

from steps.common import runlayout
from steps.common.errors import StepError
from steps.common.storage import NotFound, Store
from steps.infer.pipeline import Item, ItemResult


def read_shard(store: Store, key: str, uri: str) -> list[Item]:
    try:
        text = store.get_bytes(key).decode()
    except NotFound:
        raise StepError(f"shard not found: {uri}") from None
    items = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            items.append(Item(row["key"], row["input_uri"], int(row.get("size", 0)), str(row.get("etag", ""))))
        except (ValueError, KeyError, TypeError) as error:
            raise StepError(f"bad shard {uri} line {number}: {error}") from None
    return items


def read_index(store: Store) -> list[dict]:
    """The shard index ingest wrote: [{"name", "key", "items"}, ...] in shard order."""
    where = store.uri_for(runlayout.SHARD_INDEX)
    try:
        doc = json.loads(store.get_bytes(runlayout.SHARD_INDEX))
        shards = doc["shards"]
        return [{"name": str(s["name"]), "key": str(s["key"]), "items": int(s["items"])} for s in shards]
    except NotFound:
        raise StepError(f"no shard index at {where}: run ingest into this --run-uri first") from None
    except (ValueError, KeyError, TypeError) as error:
        raise StepError(f"bad shard index {where}: {type(error).__name__}: {error}") from None


def warm_size(model) -> tuple[int, int]:
    r = model.spec.resize
    if r.mode == "fixed" or (r.mode == "none" and r.width):
        return r.height, r.width
    return 2 * r.multiple if r.multiple > 16 else 64, 2 * r.multiple if r.multiple > 16 else 64


def result_records(results: list[ItemResult]) -> list[dict]:
    """One record per item, sorted by key: the lines of results/<shard>.jsonl (and of a commit)."""
    return [
        {
            "key": r.key,
            "status": r.status,
            "reason": r.reason,
            "latency_ms": round(r.latency_s * 1000, 2),
            "stages_ms": {k: round(v * 1000, 2) for k, v in r.stages.items()},
            "outputs": r.outputs,
        }
        for r in sorted(results, key=lambda r: r.key)
    ]


def write_shard_results(store: Store, name: str, records: list[dict], doc: dict) -> None:
    """results/<shard>.jsonl, then metrics/<shard>.json (the report reads both; metrics go last)."""
    lines = "".join(json.dumps(record) + "\n" for record in records)
    store.put_bytes(f"{runlayout.RESULTS_DIR}/{name}.jsonl", lines.encode(), content_type="application/x-ndjson")
    store.put_bytes(
        f"{runlayout.METRICS_DIR}/{name}.json", json.dumps(doc, indent=1).encode(), content_type="application/json"
    )


def exit_code(results: list[ItemResult]) -> int:
    """Exit 1 lets Argo retry (a rerun resumes and retries only the failed items); when every
    failure is a bad image, a retry gives the same answer, so 2 (permanent) instead.
    """
    return 1 if any(r.transient for r in results if r.status == "failed") else 2
