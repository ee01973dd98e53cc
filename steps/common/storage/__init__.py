"""Object storage for steps: `file:///dir` and `s3://bucket/prefix` behind one small interface.

Only this package imports boto3/botocore. A Store is rooted at the URI's prefix; keys are relative.
"""

from __future__ import annotations

import importlib.util
import os
import re
import time
import uuid
from pathlib import Path

from steps.common.storage.base import (
    ConditionalWritesUnsupported,
    DeleteError,
    NotFound,
    ObjectInfo,
    StorageError,
    StorageUnavailable,
    Store,
    dir_prefix,
    request_counts,
)
from steps.common.storage.file import FileStore

__all__ = [
    "ConditionalWritesUnsupported",
    "DeleteError",
    "FileStore",
    "NotFound",
    "ObjectInfo",
    "StorageError",
    "StorageUnavailable",
    "Store",
    "dir_prefix",
    "open_store",
    "probe_conditional_writes",
    "read_uri",
    "request_counts",
    "split_uri",
]

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-_]{1,254}$")
_UNSET = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)")


def _expand(uri: str) -> str:
    expanded = os.path.expandvars(uri)
    missing = _UNSET.search(expanded)
    if missing:
        raise StorageError(f"invalid storage URI {uri!r}: environment variable ${missing.group(1)} is not set")
    return expanded


def open_store(
    uri: str,
    *,
    s3_endpoint: str = "",
    max_attempts: int = 5,
    max_pool_connections: int = 10,
    bulk_client: str = "boto3",
    timeout_s: float | None = None,
) -> Store:
    """Open `file:///abs/dir` (env vars expanded) or `s3://bucket[/prefix]`.

    `max_pool_connections` should be at least the caller's number of concurrent workers, otherwise
    urllib3 discards connections and every request pays a new TCP handshake. `bulk_client="obstore"`
    sends small-object GETs and PUTs through obstore (s3_bulk.py), boto3 doing everything else.
    `timeout_s` bounds each S3 attempt's connect and read (the file store has no network to wait on).
    """
    expanded = _expand(uri.strip())
    if expanded.startswith("file://"):
        path = expanded[len("file://") :]
        if path.startswith("localhost/"):
            path = path[len("localhost") :]
        if not path.startswith("/"):
            raise StorageError(f"invalid storage URI {uri!r}: file URIs need an absolute path (file:///dir)")
        return FileStore(os.path.normpath(path))
    if expanded.startswith("s3://"):
        bucket, _, prefix = expanded[len("s3://") :].partition("/")
        if not _BUCKET.match(bucket):
            raise StorageError(f"invalid storage URI {uri!r}: bad bucket name {bucket!r}")
        if any(part in (".", "..") for part in prefix.strip("/").split("/")):
            raise StorageError(f"invalid storage URI {uri!r}: '.' and '..' are not allowed in a prefix")
        from steps.common.storage.s3 import S3Store  # boto3 costs ~0.3 s to import: only when needed

        return S3Store(
            bucket,
            prefix,
            endpoint=s3_endpoint,
            max_attempts=max_attempts,
            max_pool_connections=max_pool_connections,
            bulk_client=bulk_client,
            timeout_s=timeout_s,
        )
    raise StorageError(f"unsupported storage URI {uri!r}: expected file:///abs/dir or s3://bucket/prefix")


def split_uri(uri: str) -> tuple[str, str]:
    """Split an object URI into (parent URI, key): open_store(parent).get_bytes(key) reads it."""
    expanded = _expand(uri.strip())
    scheme_end = expanded.find("://") + 3
    if scheme_end < 3:
        raise StorageError(f"unsupported storage URI {uri!r}: expected file:///path or s3://bucket/key")
    parent, sep, key = expanded[scheme_end:].rstrip("/").rpartition("/")
    if not sep or not key or (expanded.startswith("s3://") and not parent):
        raise StorageError(f"invalid object URI {uri!r}: no object key")
    if expanded.startswith("file://") and not parent:
        parent = "/"
    return expanded[:scheme_end] + parent, key


def _package_path(uri: str) -> Path:
    """package://<package>/<path>: a file inside an installed package, found without importing it
    (importing rapidocr_onnxruntime would pull in OpenCV just to find a file).
    """
    package, _, inner = uri[len("package://") :].partition("/")
    found = importlib.util.find_spec(package) if package.isidentifier() else None
    if found is None or not found.submodule_search_locations:
        raise StorageError(f"invalid URI {uri!r}: package {package!r} is not installed")
    return Path(next(iter(found.submodule_search_locations))) / inner


def read_uri(uri: str, *, s3_endpoint: str = "", max_attempts: int = 5) -> bytes | None:
    """Bytes of one object at a file://, s3:// or package:// URI; None when it does not exist."""
    if uri.startswith("package://"):
        path = _package_path(uri)
        return path.read_bytes() if path.is_file() else None
    parent, key = split_uri(uri)
    try:
        return open_store(parent, s3_endpoint=s3_endpoint, max_attempts=max_attempts).get_bytes(key)
    except NotFound:
        return None


def probe_conditional_writes(store: Store, key: str, *, attempts: int = 5) -> None:
    """Create `key` twice with create-if-absent: the second must be refused; then a replace with a
    wrong ETag must be refused too. A server that ignores `If-None-Match` or `If-Match` (older MinIO
    gateways, some S3 look-alikes, a proxy that drops the header) would let two workers own one
    claim silently, so this raises ConditionalWritesUnsupported (bad input, exit 2) instead. Errors
    on the way (a blip, a 503) are retried, and when they persist raise StorageUnavailable (exit 1):
    only a server seen ignoring a condition is refused.
    """
    for attempt in range(1, attempts + 1):
        try:
            return _probe_once(store, key)
        except StorageUnavailable:
            if attempt == attempts:
                raise
            time.sleep(min(5.0, 0.2 * 2**attempt))


def _probe_once(store: Store, key: str) -> None:
    token = uuid.uuid4().hex
    probe = f"{key}-{token}"
    first, second = f"first {token}".encode(), f"second {token}".encode()
    try:
        if not store.create_bytes(probe, first):
            raise StorageUnavailable(f"conditional-write probe {store.uri_for(probe)} already existed: retrying")
        created = store.create_bytes(probe, second)
        content = store.get_bytes(probe)
        stale = store.replace_if(probe, b"stale " + second, etag="0" * 32) if not created else None
        after = store.get_bytes(probe)
    finally:
        store.delete_many([probe])
    if created or content != first:
        raise ConditionalWritesUnsupported(
            f"{store.uri} ignores conditional writes (a second PutObject with If-None-Match: * "
            f"{'succeeded' if created else 'overwrote the object'}): work-queue claims need a server that "
            "answers 412 PreconditionFailed (AWS S3, MinIO, Ceph RGW, R2); refusing to run rather than risk "
            "processing shards twice"
        )
    if stale is not None or after != first:
        raise ConditionalWritesUnsupported(
            f"{store.uri} ignores conditional writes (a PutObject with a stale If-Match succeeded): fenced "
            "heartbeats need a server that answers 412 PreconditionFailed to If-Match (AWS S3, moto, gofakes3); "
            "refusing to run rather than risk a stalled lane writing after a takeover"
        )
