"""OCI archives of built images, and the index node's part imports them from.

`buildah push` writes an OCI layout tar with one manifest; its `index.json` is rewritten so that the
one manifest is listed once per reference, each with `io.containerd.image.name` (the full reference
`ctr images import` names the image after) and `org.opencontainers.image.ref.name` (its tag).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path
from typing import Any

from pipelines.images._buildah import Buildah
from pipelines.images.catalog import ImageSpec

INDEX = "index.json"


def export(buildah: Buildah, spec: ImageSpec, archive: Path) -> str:
    """Write `archive` (atomically) for `spec`; return the manifest's digest."""
    partial = archive.with_name(archive.name + ".partial")
    pushed = archive.with_name(archive.name + ".pushed")
    for leftover in (partial, pushed):
        leftover.unlink(missing_ok=True)
    buildah(
        "push", "--quiet", "--format", "oci", spec.reference, f"oci-archive:{pushed}", what=f"push {spec.reference}"
    )
    with tarfile.open(pushed) as source, tarfile.open(partial, "w") as target:
        index: dict[str, Any] = {}
        for member in source.getmembers():
            data = source.extractfile(member) if member.isfile() else None
            if member.name.lstrip("./") == INDEX and data is not None:
                index = json.load(data)
                continue
            target.addfile(member, data)
        (manifest,) = index["manifests"]
        index["manifests"] = [_named(manifest, reference) for reference in spec.references]
        body = json.dumps(index).encode()
        info = tarfile.TarInfo(INDEX)
        info.size, info.mode = len(body), 0o644
        target.addfile(info, io.BytesIO(body))
    pushed.unlink()
    os.replace(partial, archive)
    return str(manifest["digest"])


def _named(manifest: dict[str, Any], reference: str) -> dict[str, Any]:
    tag = reference.rsplit(":", 1)[1] if ":" in reference.rsplit("/", 1)[-1] else "latest"
    annotations = {"io.containerd.image.name": reference, "org.opencontainers.image.ref.name": tag}
    return {**manifest, "annotations": annotations}


def read_index(directory: Path) -> dict[str, Any]:
    path = directory / INDEX
    return json.loads(path.read_text()) if path.is_file() else {}


def write_index(directory: Path, entries: dict[str, Any]) -> None:
    """`{name: {reference, references, digest, archive, size, stand_in}}`, written atomically."""
    partial = directory / (INDEX + ".partial")
    partial.write_text(json.dumps(entries, indent=2, sort_keys=True) + "\n")
    os.replace(partial, directory / INDEX)
