"""The output store as a lane writes to it: every write first checks that the lane still holds the
claim of the shard the key belongs to, with a lease confirmed by a recent heartbeat.

Per-image outputs live at keys every generation of a shard shares (`<key>.json`, `<key>.mask.png`),
so the commit cannot stage them; instead a lane never writes one once it may have lost the claim:
after a stall (SIGSTOP, a GC pause) longer than the lease, a write waits for the next heartbeat,
which either confirms the claim or is refused (taken over), and then the write fails (transient).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime

from steps.common.storage import StorageUnavailable, Store
from steps.common.storage.base import DeleteError, ObjectInfo
from steps.infer.claims import Claim


class FencedStore(Store):
    def __init__(self, inner: Store, *, claim_of: Callable[[str], Claim | None], lease_s: float, wait_s: float) -> None:
        self.inner = inner
        self.uri = inner.uri
        self._claim_of = claim_of
        self._lease_s = lease_s
        self._wait_s = wait_s

    def _fence(self, key: str) -> None:
        claim = self._claim_of(key)
        if claim is not None and not claim.wait_held(self._lease_s, timeout=self._wait_s):
            raise StorageUnavailable(
                f"not writing {self.inner.uri_for(key)}: the claim of {claim.shard} generation {claim.generation} "
                "was lost or could not be confirmed"
            )

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._fence(key)
        self.inner.put_bytes(key, data, content_type)

    def create_bytes(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        self._fence(key)
        return self.inner.create_bytes(key, data, content_type)

    def replace_if(self, key: str, data: bytes, *, etag: str, content_type: str | None = None) -> str | None:
        self._fence(key)
        return self.inner.replace_if(key, data, etag=etag, content_type=content_type)

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
