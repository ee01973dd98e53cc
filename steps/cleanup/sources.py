"""What the engine deletes: current objects (any store) and noncurrent S3 versions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from steps.cleanup.engine import Failure, Target, select
from steps.cleanup.rules import in_prefix, is_expired
from steps.common.storage import Store


class CurrentObjects:
    """Objects as a plain listing shows them. On a versioned bucket, deleting one adds a delete marker."""

    noncurrent = False

    def __init__(self, store: Store, page_size: int = 1000) -> None:
        self.store = store
        self.page_size = page_size

    def pages(self, prefix: str, cutoff: datetime) -> Iterator[tuple[int, list[Target]]]:
        for page in self.store.list_pages(prefix, self.page_size):
            yield len(page), select(page, prefix, cutoff)

    def delete(self, targets: Sequence[Target]) -> list[Failure]:
        errors = self.store.delete_many([t.key for t in targets])
        return [Failure(e.key, e.code, e.message) for e in errors]


class NoncurrentVersions:
    """Versions (and delete markers) that stopped being current before the cutoff (`--purge-noncurrent`).

    Age counts from when a version became noncurrent, as S3 Lifecycle's NoncurrentDays does: a
    year-old version replaced yesterday is a day-old backup, and stays.
    """

    noncurrent = True

    def __init__(self, store: Store, page_size: int = 1000) -> None:
        from steps.common.storage import s3_versions  # boto3: only when versions are purged

        self.store = store
        self.page_size = page_size
        self._versions = s3_versions

    def pages(self, prefix: str, cutoff: datetime) -> Iterator[tuple[int, list[Target]]]:
        for page in self._versions.list_version_pages(self.store, prefix, self.page_size):  # type: ignore[arg-type]
            selected = [
                Target(v.key, v.size, v.version_id)
                for v in page
                if not v.is_latest
                and v.noncurrent_since is not None
                and in_prefix(v.key, prefix)
                and is_expired(v.noncurrent_since, cutoff)
            ]
            yield len(page), selected

    def delete(self, targets: Sequence[Target]) -> list[Failure]:
        errors = self._versions.delete_versions(self.store, [(t.key, t.version_id) for t in targets])  # type: ignore[arg-type]
        return [Failure(e.key, e.code, e.message, e.version_id) for e in errors]
