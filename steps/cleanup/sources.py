"""What the cleanup passes delete: current objects (any store) and noncurrent S3 versions."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime

from steps.cleanup.passes import Failure, Source, Target, select
from steps.cleanup.ranges import WHOLE, KeyRange, clip
from steps.cleanup.rules import in_prefix, is_expired
from steps.common.storage import Store


class CurrentObjects:
    """Objects as a plain listing shows them. On a versioned bucket, deleting one adds a delete marker."""

    noncurrent = False

    def __init__(self, store: Store, page_size: int = 1000) -> None:
        self.store = store
        self.page_size = page_size

    def pages(self, prefix: str, cutoff: datetime, span: KeyRange = WHOLE) -> Iterator[tuple[int, list[Target]]]:
        for page in clip(self.store.list_pages(prefix, self.page_size, start_after=span.after), span):
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

    def pages(self, prefix: str, cutoff: datetime, span: KeyRange = WHOLE) -> Iterator[tuple[int, list[Target]]]:
        # Versions are listed per whole prefix (main._tasks), never from a KeyMarker of our own:
        # servers disagree on what a KeyMarker without a VersionIdMarker means. S3 starts after
        # it, Ceph RGW included it (https://tracker.ceph.com/issues/68055,
        # https://github.com/ceph/s3-tests/pull/594) and moto skips the first version after it.
        if span != WHOLE:
            raise ValueError(f"noncurrent versions are listed per whole prefix, not in key ranges ({span})")
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


def sources_for(store: Store, purge_noncurrent: bool) -> list[Source]:
    """Current objects always; noncurrent versions too when they are purged (a versioned S3 store)."""
    return [CurrentObjects(store), *([NoncurrentVersions(store)] if purge_noncurrent else [])]
