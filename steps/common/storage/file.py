"""A Store on a local (or mounted) directory: the local runner's default.

Symlinks: a key (or listing prefix) must resolve inside the store's real root. A symlink within the
root that points inside it is followed; one that leads out of it is refused with a StorageError
(exit 2) for reads, writes and deletes, and a listing skips such entries, so nothing outside the
root is ever read, overwritten or deleted through the store. Listings never descend into symlinked
directories (no loops, no key listed twice); a listing prefix that is one is listed. The check is a
realpath before each operation, not openat2(RESOLVE_BENEATH): it guards against a store laid out by
mistake, not against someone swapping a directory for a symlink mid-operation.

Durability: a write fsyncs the temporary file before it is renamed or linked into place, then the
directory (and the parent of any directory it made), so a committed object is whole after a power
loss. Temporary files of a crashed writer are removed when they are over a day old, by the first
write of each store object into their directory: a rerun writes where the crash left them, and the
scan costs one directory listing per directory a process writes to.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from steps.common.storage.base import (
    DeleteError,
    NotFound,
    ObjectInfo,
    StorageError,
    Store,
    check_key,
    count_request,
    dir_prefix,
)

#: Temporary files of in-flight writes: hidden from listings so readers never see partial objects.
TMP_PREFIX = ".kiosk-tmp-"
#: A temporary file this old belongs to a writer that crashed: no write takes a day.
TMP_MAX_AGE_S = 24 * 3600


def _info(key: str, st: os.stat_result) -> ObjectInfo:
    # A content hash would read every file on each listing; size+mtime is what rsync trusts too.
    return ObjectInfo(
        key=key,
        size=st.st_size,
        etag=f"{st.st_size:x}-{st.st_mtime_ns:x}",
        last_modified=datetime.fromtimestamp(st.st_mtime, UTC),
    )


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _make_dirs(directory: Path) -> None:
    """`mkdir -p`, fsyncing the parent of each directory it makes: a new directory's entry lives in
    its parent, and a file in a directory lost at power-off is lost with it.
    """
    missing = []
    while not directory.is_dir():
        missing.append(directory)
        directory = directory.parent
    for made in reversed(missing):
        try:
            made.mkdir()
        except FileExistsError:  # another writer made it
            continue
        _fsync_dir(made.parent)


def _sweep_temp(directory: Path) -> None:
    """Remove temporary files over TMP_MAX_AGE_S old in `directory` (best effort)."""
    cutoff = time.time() - TMP_MAX_AGE_S
    try:
        entries = [e for e in os.scandir(directory) if e.name.startswith(TMP_PREFIX)]
    except OSError:
        return
    for entry in entries:
        try:
            if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                os.unlink(entry.path)
        except OSError:  # gone already, or not ours to remove: the write itself must not fail on it
            continue


def _temp_file(directory: Path) -> tuple[int, str]:
    """A temporary file in `directory`, made if missing. A concurrent delete may prune a directory
    on the way when it just became empty (S3 has no directories to lose): between one mkdir and the
    next, or before mkstemp. So the whole path is made again.
    """
    for attempt in range(10):
        try:
            _make_dirs(directory)
            return tempfile.mkstemp(prefix=TMP_PREFIX, dir=directory)
        except FileNotFoundError:
            if attempt == 9:
                raise
    raise AssertionError("unreachable")


def _replace(tmp: str, path: Path) -> bool:
    try:
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise
    return True


def _link_new(tmp: str, path: Path) -> bool:
    """False where `path` exists: link(2) fails with EEXIST like O_CREAT|O_EXCL does, but readers
    never see a half-written claim.
    """
    try:
        os.link(tmp, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(tmp)
    return True


class FileStore(Store):
    def __init__(self, root: str) -> None:
        self.root = Path(root)
        self.uri = "file://" + root.rstrip("/")
        #: Where every key must resolve (the root itself may be a symlink, e.g. a mounted volume's).
        self._real_root = os.path.realpath(root)
        self._swept: set[Path] = set()  # directories whose stale temporary files this store removed

    def _path(self, key: str) -> Path:
        return self._inside(self.root / check_key(key), key)

    def _inside(self, path: Path, key: str) -> Path:
        """`path`, after checking that it resolves inside the root (module docstring: symlinks)."""
        real = os.path.realpath(path)
        if real != self._real_root and not real.startswith(self._real_root.rstrip("/") + "/"):
            raise StorageError(
                f"{self.uri}/{key} resolves to {real}, outside the store root {self._real_root}: "
                "a symlink out of the store is refused (nothing was read, written or deleted)"
            )
        return path

    def check_inside(self, prefix: str) -> None:
        """Raise StorageError where the directory `prefix` resolves outside the root (module docstring)."""
        prefix = dir_prefix(prefix)
        if prefix:
            self._path(prefix[:-1])

    def _contained(self, entry: os.DirEntry) -> bool:
        return not entry.is_symlink() or os.path.realpath(entry.path).startswith(self._real_root.rstrip("/") + "/")

    def _error(self, error: OSError, what: str) -> StorageError:
        return StorageError(f"cannot {what} {self.uri}: {error.strerror or error}")

    def _entries(self, directory: Path) -> list[tuple[str, os.DirEntry, bool]]:
        """(name, entry, is_dir) in S3's key order: sorting on name + '/' for directories yields
        exactly the order of the full keys.
        """
        try:
            entries = list(os.scandir(directory))
        except FileNotFoundError:
            return []
        except OSError as error:
            raise self._error(error, "list") from None
        named = []
        for entry in entries:
            if entry.name.startswith(TMP_PREFIX):
                continue
            if not self._contained(entry):
                continue
            is_dir = entry.is_dir(follow_symlinks=False)
            named.append((entry.name + "/" if is_dir else entry.name, entry, is_dir))
        return sorted(named, key=lambda item: item[0])

    def _walk(self, directory: Path, rel: str, after: str = "") -> Iterator[ObjectInfo]:
        for name, entry, is_dir in self._entries(directory):
            key = rel + name
            if is_dir:
                # Every key inside sorts after `key`; if `after` is beyond `key` without lying
                # inside it, it is beyond all of them, and the directory is skipped unread.
                if after <= key or after.startswith(key):
                    yield from self._walk(Path(entry.path), key, after)
            elif key <= after:
                continue
            elif entry.is_file():
                try:
                    yield _info(rel + name, entry.stat())
                except FileNotFoundError:  # deleted while listing, as S3 would not show it either
                    continue

    def list_pages(
        self, prefix: str = "", page_size: int = 1000, *, start_after: str = ""
    ) -> Iterator[list[ObjectInfo]]:
        prefix = dir_prefix(prefix)
        self.check_inside(prefix)
        count_request("LIST")
        page: list[ObjectInfo] = []
        for info in self._walk(self.root / prefix if prefix else self.root, prefix, start_after):
            page.append(info)
            if len(page) >= page_size:
                yield page
                count_request("LIST")
                page = []
        if page:
            yield page

    def list_dirs(self, prefix: str = "", limit: int = 1000) -> list[str]:
        prefix = dir_prefix(prefix)
        self.check_inside(prefix)
        entries = self._entries(self.root / prefix if prefix else self.root)
        return [prefix + name for name, _, is_dir in entries if is_dir][:limit]

    def get_bytes(self, key: str, *, length: int | None = None) -> bytes:
        path = self._path(key)
        count_request("GET")
        try:
            if length is not None:
                with open(path, "rb") as handle:
                    return handle.read(length)
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFound(f"object not found: {self.uri_for(key)}") from None
        except OSError as error:
            raise self._error(error, f"read {key!r} from") from None

    def _write(self, key: str, data: bytes, place: Callable[[str, Path], bool], what: str) -> bool:
        """`data` goes to a temporary file beside the key's path first; `place(tmp, path)` then puts
        it there (False: it did not, the key exists) and leaves no temporary file behind.
        """
        path = self._path(key)
        count_request("PUT")
        try:
            fd, tmp = _temp_file(path.parent)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())  # before the rename: else a power loss can leave it empty
            except BaseException:
                os.unlink(tmp)
                raise
            placed = place(tmp, path)
            if placed:
                _fsync_dir(path.parent)  # the new directory entry
            if path.parent not in self._swept:
                self._swept.add(path.parent)
                _sweep_temp(path.parent)
            return placed
        except OSError as error:
            raise self._error(error, what) from None

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._write(key, data, _replace, f"write {key!r} to")

    def create_bytes(self, key: str, data: bytes, content_type: str | None = None) -> bool:
        return self._write(key, data, _link_new, f"create {key!r} in")

    def replace_if(self, key: str, data: bytes, *, etag: str, content_type: str | None = None) -> str | None:
        # Every compare-and-swap in a directory holds an exclusive lock on the directory itself, so a
        # compare and its replace are one step for every other CAS writer (flock(2), local disks).
        path = self._path(key)
        try:
            fd = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise self._error(error, f"replace {key!r} in") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            current = self.head(key)
            if current is None or current.etag != etag:
                return None
            self._write(key, data, _replace, f"replace {key!r} in")
            written = self.head(key)
            return written.etag if written is not None else None
        finally:
            os.close(fd)  # releases the lock

    def download_file(self, key: str, path: str) -> None:
        try:
            shutil.copyfile(self._path(key), path)
        except FileNotFoundError:
            raise NotFound(f"object not found: {self.uri_for(key)}") from None
        except OSError as error:
            raise self._error(error, f"read {key!r} from") from None

    def head(self, key: str) -> ObjectInfo | None:
        count_request("GET")
        try:
            st = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as error:
            raise self._error(error, f"stat {key!r} in") from None
        return _info(key, st) if stat.S_ISREG(st.st_mode) else None

    def delete_many(self, keys: Sequence[str]) -> list[DeleteError]:
        errors = []
        count_request("DELETE", -(-len(keys) // 1000))
        for key in keys:
            try:
                path = self._path(key)
                path.unlink(missing_ok=True)
            except StorageError as error:
                errors.append(DeleteError(key, "InvalidKey", str(error)))
                continue
            except OSError as error:
                errors.append(DeleteError(key, type(error).__name__, error.strerror or str(error)))
                continue
            self._prune(path.parent)
        return errors

    def _prune(self, directory: Path) -> None:
        # Empty directories are invisible in S3; removing them keeps both stores listing the same.
        while directory != self.root and self.root in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def uri_for(self, key: str) -> str:
        return f"{self.uri}/{check_key(key)}"

    def server_time(self) -> datetime:
        return datetime.now(UTC)
