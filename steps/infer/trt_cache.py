"""TensorRT engine and timing caches persisted under the model's cache prefix.

Building TensorRT engines takes from seconds to minutes per model (ONNX Runtime's docs: a Stable
Diffusion UNet 384 s without caches, 42 s with the timing cache, 9 s with the engine cache), and a
fan-out pays it in every pod. So the cache directory TensorRT writes to (`--trt-cache-dir`) is
restored from `<model>.cache/tensorrt/ort-<onnxruntime version>/` before the session starts and
saved back after the warm-up batch built the engines. ORT names engine files after the model
hash and the GPU's compute capability, and engines do not carry across TensorRT or ORT versions,
hence the version in the prefix. Models inside packages (package://) are read-only: no cache.
Files are only ever added or replaced, never deleted; concurrent pods writing the same engine
write the same bytes.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from steps.common.storage import StorageError, Store, open_store, split_uri


def cache_uri(model_uri: str, ort_version: str) -> str:
    """'' for models that cannot carry a cache (package://)."""
    if not model_uri.startswith(("s3://", "file://")):
        return ""
    base = model_uri.removesuffix(".onnx")
    return f"{base}.cache/tensorrt/ort-{ort_version}"


def _store(uri: str, **storage) -> tuple[Store, str]:
    parent, name = split_uri(uri)
    return open_store(parent, **storage), name


def restore(uri: str, local: str, **storage) -> list[str]:
    """Copy the persisted cache files into `local`; the names copied. Storage trouble only warns:
    a missing cache costs build time, never the shard.
    """
    if not uri:
        return []
    os.makedirs(local, exist_ok=True)
    try:
        store, name = _store(uri, **storage)
        copied = []
        for info in store.list(name):
            target = Path(local) / info.key[len(name) + 1 :]
            if "/" in info.key[len(name) + 1 :]:
                continue  # ORT writes a flat directory
            if not (target.exists() and target.stat().st_size == info.size):
                target.write_bytes(store.get_bytes(info.key))
                copied.append(target.name)
        return copied
    except StorageError as error:
        print(f"steps.infer: warning: cannot restore the TensorRT cache from {uri}: {error}", file=sys.stderr)
        return []


def persist(uri: str, local: str, **storage) -> list[str]:
    """Upload cache files that are new or changed in size; the names uploaded."""
    if not uri or not os.path.isdir(local):
        return []
    try:
        store, name = _store(uri, **storage)
        known = {info.key[len(name) + 1 :]: info.size for info in store.list(name)}
        saved = []
        for path in sorted(Path(local).iterdir()):
            if path.is_file() and known.get(path.name) != path.stat().st_size:
                store.put_bytes(f"{name}/{path.name}", path.read_bytes(), content_type="application/octet-stream")
                saved.append(path.name)
        return saved
    except (StorageError, OSError) as error:
        print(f"steps.infer: warning: cannot save the TensorRT cache to {uri}: {error}", file=sys.stderr)
        return []
