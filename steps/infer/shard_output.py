"""`--output-layout per-shard`: one results JSONL and one masks object per shard.

The per-image layout costs 2 PUTs per image (mask PNG + result JSON). S3 bills every PUT ($0.005
per 1,000): 2 per image is $0.01 per 1,000 images, 40% of the $0.025 per 1k GPU cost goal. Here a
shard of N images costs 2 PUTs in all:

    <output-uri>/shards/<shard>.masks    the shard's mask PNGs, back to back
    <output-uri>/shards/<shard>.jsonl    one record per item (sorted by key), written last

Each record names its mask as `mask` (the masks object's URI) + `mask_offset` + `mask_length`: a
ranged GET (`Range: bytes=offset-(offset+length-1)`) reads one mask. The records and masks stay in
memory until the shard ends (about 1 kB of JSON and 2 kB of 1-bit PNG per 512x512 image).
A lane writes both under its generation's own names (`<shard>.g0001.masks`, `<shard>.g0001.jsonl`:
`staged_name`), so two writers' PUTs never mix: each JSONL points into its own blob. Once its commit
wins (steps/infer/claims.py), the lane moves its JSONL to `<shard>.jsonl` (`publish`: a copy, then
the staged one is deleted, with any pair a dead generation left; the masks stay where its records
point); a refused writer deletes its staged pair instead. A generation that did not commit leaves nothing to resume:
the next one runs the whole shard again.
"""

from __future__ import annotations

import json
import threading

from steps.common.storage import NotFound, Store

DIR = "shards"


def masks_key(shard: str) -> str:
    return f"{DIR}/{shard}.masks"


def results_key(shard: str) -> str:
    return f"{DIR}/{shard}.jsonl"


def staged_name(shard: str, generation: int) -> str:
    """The name a lane's generation writes the shard's objects under."""
    return f"{shard}.g{generation:04d}"


def staged_keys(shard: str, generation: int) -> list[str]:
    name = staged_name(shard, generation)
    return [masks_key(name), results_key(name)]


def publish(store: Store, shard: str, generation: int, generations: int) -> str | None:
    """Copy the committed generation's JSONL to the shard's own name and delete every other staged
    object of the shard's `generations`; the key written, or None when that generation wrote none
    (no item succeeded, or it was published already).
    """
    try:
        data: bytes | None = store.get_bytes(results_key(staged_name(shard, generation)))
    except NotFound:
        data = None
    if data is not None:
        store.put_bytes(results_key(shard), data, content_type="application/x-ndjson")
    # One JSONL per shard for readers that glob shards/*.jsonl: the committed one, copied, and any
    # pair a killed or refused generation left go (one batched DELETE, whether or not they exist).
    # The committed masks stay, named by the records.
    keep = masks_key(staged_name(shard, generation))
    store.delete_many([key for g in range(generations) for key in staged_keys(shard, g) if key != keep])
    return results_key(shard) if data is not None else None


class ShardOutput:
    def __init__(self, store: Store, shard: str) -> None:
        self.store = store
        self.shard = shard
        self._items: list[tuple[dict, bytes | None]] = []
        self._lock = threading.Lock()

    def add(self, record: dict, mask: bytes | None) -> None:
        with self._lock:
            self._items.append((record, mask))

    def __len__(self) -> int:
        return len(self._items)

    def write(self) -> list[str]:
        """PUT the masks object (when any item has a mask), then the JSONL; the keys written."""
        items = sorted(self._items, key=lambda pair: pair[0]["key"])
        masks_uri = self.store.uri_for(masks_key(self.shard))
        blob, offset, lines = bytearray(), 0, []
        for record, mask in items:
            if mask is not None:
                record = {**record, "mask": masks_uri, "mask_offset": offset, "mask_length": len(mask)}
                blob += mask
                offset += len(mask)
            lines.append(json.dumps(record))
        written = []
        if blob:
            self.store.put_bytes(masks_key(self.shard), bytes(blob), content_type="application/octet-stream")
            written.append(masks_key(self.shard))
        text = "".join(line + "\n" for line in lines).encode()
        self.store.put_bytes(results_key(self.shard), text, content_type="application/x-ndjson")
        written.append(results_key(self.shard))
        return written
