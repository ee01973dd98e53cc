"""Whether two stores share objects: one's prefix equals the other's or lies inside it.

A step that deletes or overwrites under one store (ingest clears an earlier run's files) must not
do so where another store's objects live. Prefixes are compared as directories ('s3://b/p' holds
's3://b/p/run' but not 's3://b/p2'), file stores by their real paths (symlinks resolved), so two
spellings of one directory are one directory.
"""

from __future__ import annotations

import os

from steps.common.storage.base import Store, dir_prefix
from steps.common.storage.file import FileStore


def _location(store: Store) -> tuple[str, ...]:
    """(scheme, bucket or '', path components) of the store's prefix."""
    if isinstance(store, FileStore):
        parts = os.path.realpath(store.root).split("/")
        return ("file", "", *[p for p in parts if p])
    scheme, _, rest = store.uri.partition("://")
    bucket, _, prefix = rest.partition("/")
    return (scheme, bucket, *dir_prefix(prefix).split("/")[:-1])


def overlap(a: Store, b: Store, under: str = "") -> bool:
    """True when `a` and `b` (or the directory `under` in `b`) are the same prefix or one lies inside the other."""
    first, second = _location(a), (*_location(b), *dir_prefix(under).split("/")[:-1])
    shorter = min(len(first), len(second))
    return first[:shorter] == second[:shorter]
