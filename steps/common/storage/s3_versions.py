"""Versioned-bucket operations for retention (list and delete object versions) on an S3Store.

Kept apart from s3.py because only the cleanup step needs them. It reaches into the store's
client and error mapping (`_client`, `_errors`, `_key`) so that retries, endpoint quirks and
error messages stay exactly those of S3Store.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from steps.common.storage.base import Store, dir_prefix
from steps.common.storage.s3 import S3Store

_DELETE_BATCH = 1000  # the DeleteObjects limit


@dataclass(frozen=True, slots=True)
class VersionInfo:
    key: str  # relative to the store's root
    version_id: str
    size: int
    last_modified: datetime  # timezone-aware, UTC
    is_latest: bool
    is_delete_marker: bool
    #: When this version stopped being current: the LastModified of the next newer version of the
    #: same key (what S3 Lifecycle's NoncurrentDays counts from). None for the current version.
    noncurrent_since: datetime | None


def versioning_status(store: Store) -> str:
    """'Enabled', 'Suspended' or 'Disabled' for an S3 store; 'n/a' for stores without versions."""
    if not isinstance(store, S3Store):
        return "n/a"
    with store._errors("read the versioning status of"):
        response = store._client.get_bucket_versioning(Bucket=store.bucket)
    return str(response.get("Status") or "Disabled")


def list_version_pages(store: S3Store, prefix: str, page_size: int = 1000) -> Iterator[list[VersionInfo]]:
    """Every version and delete marker under the directory `prefix`, key order, newest first per key.

    boto3 splits each ListObjectVersions page into `Versions` and `DeleteMarkers`; they are merged
    back into S3's order here. The newest entry of a key may sit at the end of the previous page,
    so the last one seen is carried across pages.
    """
    full = store.prefix + dir_prefix(prefix)
    kwargs = {"Bucket": store.bucket, "Prefix": full, "MaxKeys": min(max(page_size, 1), 1000)}
    cut = len(store.prefix)
    # Per key, the time of the tie group being read and of the strictly newer group above it.
    # Timestamps have one-second resolution, so versions written in the same second come back in
    # no reliable order; a noncurrent version's age then counts from the newer group's time,
    # which is never earlier than its true successor's.
    current_key, group_time, above, known = "", None, None, False
    while True:
        with store._errors("list versions of"):
            response = store._client.list_object_versions(**kwargs)
        raw = [(item, False) for item in response.get("Versions", [])]
        raw += [(item, True) for item in response.get("DeleteMarkers", [])]
        # Newest first per key, and the current one first among those written in the same second.
        raw.sort(key=lambda p: (p[0]["Key"], -p[0]["LastModified"].timestamp(), not p[0].get("IsLatest")))
        page = []
        for item, marker in raw:
            key, modified = item["Key"], item["LastModified"].astimezone(UTC)
            if key != current_key:
                current_key, group_time, above = key, modified, None
                known = bool(item.get("IsLatest"))
            elif modified != group_time:
                above, group_time = group_time, modified
            since = None if item.get("IsLatest") or not known else (above or modified)
            if key.endswith("/"):
                continue  # console "directory markers", as S3Store.list_pages skips them
            if not item.get("IsLatest") and since is None:
                # The newer version is not in this listing (written between pages): its time is
                # unknown, so the age cannot be proved; skip it (the next run will see it).
                continue
            page.append(
                VersionInfo(
                    key=key[cut:],
                    version_id=item["VersionId"],
                    size=0 if marker else int(item.get("Size", 0)),
                    last_modified=modified,
                    is_latest=bool(item.get("IsLatest")),
                    is_delete_marker=marker,
                    noncurrent_since=since,
                )
            )
        if page:
            yield page
        if not response.get("IsTruncated"):
            return
        kwargs["KeyMarker"] = response["NextKeyMarker"]
        kwargs["VersionIdMarker"] = response["NextVersionIdMarker"]


@dataclass(frozen=True, slots=True)
class VersionDeleteError:
    key: str
    version_id: str
    code: str
    message: str


def delete_versions(store: S3Store, items: Sequence[tuple[str, str]]) -> list[VersionDeleteError]:
    """Permanently delete (key, version_id) pairs, 1000 per request; per-key failures are returned."""
    errors: list[VersionDeleteError] = []
    cut = len(store.prefix)
    for start in range(0, len(items), _DELETE_BATCH):
        batch = items[start : start + _DELETE_BATCH]
        with store._errors("delete versions from"):
            response = store._client.delete_objects(
                Bucket=store.bucket,
                Delete={"Objects": [{"Key": store._key(k), "VersionId": v} for k, v in batch], "Quiet": True},
            )
        errors.extend(
            VersionDeleteError(
                item["Key"][cut:], item.get("VersionId", ""), item.get("Code", ""), item.get("Message", "")
            )
            for item in response.get("Errors", [])
        )
    return errors


def delete_object(store: S3Store, key: str) -> None:
    """One DeleteObject request: the old monitor's one-request-per-key shape (benchmark baseline)."""
    with store._errors("delete", key):
        store._client.delete_object(Bucket=store.bucket, Key=store._key(key))
