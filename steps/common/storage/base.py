"""Storage types shared by the file and S3 stores: object info, errors and the Store interface."""

from __future__ import annotations

import abc
import builtins
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from steps.common.errors import StepError

#: Requests this process sent, by S3 price class (GET: GET/HEAD, PUT: PUT/COPY/POST/LIST, DELETE),
#: so a step can report its own request cost. The file store counts what S3 would have been sent.
_REQUESTS: Counter[str] = Counter()
_REQUESTS_LOCK = threading.Lock()


def count_request(kind: str, n: int = 1) -> None:
    with _REQUESTS_LOCK:
        _REQUESTS[kind] += n


def request_counts() -> dict[str, int]:
    with _REQUESTS_LOCK:
        return {k: _REQUESTS.get(k, 0) for k in ("GET", "PUT", "LIST", "DELETE")}


class StorageError(StepError):
    """Storage is unreachable, the bucket is missing, access is denied, or a URI/key is invalid."""


class StorageUnavailable(StorageError):
    """Transient: the endpoint is unreachable, times out, throttles or answers 5xx after botocore's own
    retries. Exit code 1, so Argo's retryStrategy retries the step; anything else about storage (a
    malformed URI, a missing bucket, access denied) is bad input, exit code 2.
    """

    exit_code = 1


class NotFound(StorageError):
    """The object does not exist (callers that expect this catch it, e.g. per-item failures)."""


class ConditionalWritesUnsupported(StorageError):
    """The server accepted a second create-if-absent of one key: claims on it could have two owners."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str  # relative to the store's root
    size: int
    etag: str
    last_modified: datetime  # timezone-aware, UTC


@dataclass(frozen=True, slots=True)
class DeleteError:
    key: str
    code: str
    message: str


def dir_prefix(prefix: str) -> str:
    """Normalise a listing prefix to a directory: 'uploads' must never match 'uploads2/x' or 'uploads.png'."""
    prefix = prefix.strip("/")
    return f"{prefix}/" if prefix else ""


def check_key(key: str) -> str:
    """Reject keys that would escape the store root or name a directory."""
    parts = key.split("/")
    if not key or key.startswith("/") or key.endswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StorageError(f"invalid object key {key!r}: must be a relative path without '.', '..' or '//'")
    return key


class Store(abc.ABC):
    """A prefix of a bucket or a directory. Keys are relative to it, '/'-separated."""

    uri: str

    @abc.abstractmethod
    def list_pages(
        self, prefix: str = "", page_size: int = 1000, *, start_after: str = ""
    ) -> Iterator[list[ObjectInfo]]:
        """Objects under the directory `prefix`, in key order, one page (≤ page_size) at a time.

        `start_after`: only keys that sort after it (S3's StartAfter), so that key ranges of one
        prefix can be listed side by side.
        """

    def list_dirs(self, prefix: str = "", limit: int = 1000) -> list[str]:
        """Up to `limit` of the first sub-directories of `prefix` ('uploads/a/'), in key order.

        A hint for splitting a listing into key ranges, so it may be partial; a store without
        directories returns none.
        """
        return []

    def list(self, prefix: str = "", *, page_size: int = 1000) -> Iterator[ObjectInfo]:
        for page in self.list_pages(prefix, page_size):
            yield from page

    @abc.abstractmethod
    def get_bytes(self, key: str, *, length: int | None = None) -> bytes:
        """The object's content (only its first `length` bytes if given); NotFound when missing."""

    @abc.abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        """Write atomically: readers see the old object or the whole new one, never a part."""

    @abc.abstractmethod
    def create_bytes(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        """Create `key` only if it does not exist, atomically (S3 `If-None-Match: *`, a hard link on
        files): True when this call created it, False when it already existed. Never overwrites.

        A create whose response was lost and whose retry is refused is resolved by reading the
        object back: True when its bytes are `data`. So callers make `data` unique (a token).
        """

    @abc.abstractmethod
    def replace_if(self, key: str, data: bytes, *, etag: str, content_type: str | None = None) -> str | None:
        """Compare-and-swap: overwrite `key` only while its ETag is still `etag` (S3 `If-Match`, a
        locked compare on files). The new ETag when this call wrote it; None when the object changed
        or is gone, so whoever holds the old ETag has lost the race.
        """

    @abc.abstractmethod
    def download_file(self, key: str, path: str) -> None:
        """Copy the object to a local file (multipart/concurrent for large S3 objects)."""

    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo | None:
        """Metadata of one object, None when it does not exist."""

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    @abc.abstractmethod
    def delete_many(self, keys: Sequence[str]) -> builtins.list[DeleteError]:  # `list` is a method here
        """Delete keys (missing ones count as deleted); per-key failures are returned, not raised."""

    @abc.abstractmethod
    def uri_for(self, key: str) -> str:
        """The absolute URI of `key` (what a later `open_store(uri)` would read)."""

    @abc.abstractmethod
    def server_time(self) -> datetime:
        """The storage's clock (UTC): retention compares object ages against it, not ours."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r})"
