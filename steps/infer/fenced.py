"""The output store as a lane writes to it: per-image outputs are staged per generation, and every
write first checks that the lane still holds the claim of the shard the key belongs to.

Per-image outputs live at keys every generation of a shard shares (`<key>.json`, `<key>.mask.png`).
A lane never writes those keys while it works: each goes to its generation's staging prefix in the
run (`queue/staging/<shard>/gNNNN/<key>`), and only publishing from the shard's commit copies the
committed generation's objects to the final keys (`publish`). A worker paused anywhere, even between
a check and its PUT, can only ever write into its own staging, which nobody reads.

The lease check (a beat confirmed within TTL/2) is a cheap early stop on top: after a stall a write
waits for the next heartbeat, which confirms the claim or is refused (taken over).
"""

from __future__ import annotations

import builtins
import mimetypes
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from steps.common import runlayout
from steps.common.storage import NotFound, StorageUnavailable, Store
from steps.common.storage.base import DeleteError, ObjectInfo
from steps.infer.claims import Claim

#: (output key -> its claim) for a per-image key: the item's shard's; None for other keys.
ClaimOf = Callable[[str], Claim | None]


def staging_prefix(shard: str, generation: int) -> str:
    return f"{runlayout.QUEUE_DIR}/staging/{shard}/g{generation:04d}"


def staged_key(shard: str, generation: int, key: str) -> str:
    return f"{staging_prefix(shard, generation)}/{key}"


def publish(run: Store, outputs: Store, shard: str, generation: int, keys: list[str], workers: int = 4) -> int:
    """Copy the committed generation's staged objects to their final keys; how many were copied.
    Idempotent (the same bytes each time), so whoever finds a commit not yet published finishes it.
    """

    def copy(key: str) -> int:
        try:
            data = run.get_bytes(staged_key(shard, generation, key))
        except NotFound:  # published and cleaned up already
            return 0
        outputs.put_bytes(key, data, content_type=mimetypes.guess_type(key)[0])
        return 1

    with ThreadPoolExecutor(max(1, workers)) as pool:
        return sum(pool.map(copy, keys))


def discard(run: Store, shard: str, generation: int | None = None) -> None:
    """Delete a generation's staging when it did not commit; after a publish (no generation), the
    staging of every generation of the shard, dead ones' included.
    """
    prefix = staging_prefix(shard, generation) if generation is not None else staging_prefix(shard, 0).rsplit("/", 1)[0]
    run.delete_many([o.key for o in run.list(prefix)])


_ITEM_SUFFIXES = (runlayout.result_key(""), runlayout.mask_key(""))


class FencedStore(Store):
    def __init__(self, inner: Store, staging: Store, *, claim_of: ClaimOf, lease_s: float, wait_s: float) -> None:
        self.inner = inner
        self.staging = staging
        self.uri = inner.uri
        self._claim_of = claim_of
        self._lease_s = lease_s
        self._wait_s = wait_s

    def _fence(self, key: str) -> tuple[Store, str]:
        """Where a write of `key` goes: a per-image key to its generation's staging, other keys (the
        per-shard layout's own per-generation objects) as they are; refused once the claim is lost.
        """
        claim = self._claim_of(key)
        if claim is None:
            return self.inner, key
        if not claim.wait_held(self._lease_s, timeout=self._wait_s):
            raise StorageUnavailable(
                f"not writing {self.inner.uri_for(key)}: the claim of {claim.shard} generation {claim.generation} "
                "was lost or could not be confirmed"
            )
        if key.endswith(_ITEM_SUFFIXES):
            return self.staging, staged_key(claim.shard, claim.generation, key)
        return self.inner, key

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        store, where = self._fence(key)
        store.put_bytes(where, data, content_type)

    def create_bytes(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        store, where = self._fence(key)
        return store.create_bytes(where, data, content_type)

    def replace_if(self, key: str, data: bytes, *, etag: str, content_type: str | None = None) -> str | None:
        store, where = self._fence(key)
        return store.replace_if(where, data, etag=etag, content_type=content_type)

    def list_pages(
        self, prefix: str = "", page_size: int = 1000, *, start_after: str = ""
    ) -> Iterator[list[ObjectInfo]]:
        return self.inner.list_pages(prefix, page_size, start_after=start_after)

    def get_bytes(self, key: str, *, length: int | None = None) -> bytes:
        return self.inner.get_bytes(key, length=length)

    def download_file(self, key: str, path: str) -> None:
        self.inner.download_file(key, path)

    def head(self, key: str) -> ObjectInfo | None:
        return self.inner.head(key)

    def delete_many(self, keys: Sequence[str]) -> builtins.list[DeleteError]:
        return self.inner.delete_many(keys)

    def uri_for(self, key: str) -> str:
        return self.inner.uri_for(key)

    def server_time(self) -> datetime:
        return self.inner.server_time()

    def close(self) -> None:
        self.inner.close()
