"""Build every image in the catalog into buildah's store and `.tools/images/`, skipping what is current.

An image is current when its stamp (a hash of its recipe's inputs and of the stamps of the images it
is built on) matches, its archive exists and buildah still has it: a rebuild with nothing changed
is a no-op, and a changed base rebuilds everything on it.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pipelines import argo_module, project
from pipelines.cluster.controlplane import EXECUTOR_IMAGE
from pipelines.config import load_config
from pipelines.images import archive, catalog, recipes
from pipelines.images._buildah import Buildah, ImagesError, find_tools
from pipelines.images.catalog import ImageSpec

#: What the steps image is built from (the stamp covers them): `COPY` sources and the Dockerfile.
STEPS_INPUTS = ("images/steps.Dockerfile", "pyproject.toml", "uv.lock", "README.md", "pipelines", "steps")


@dataclass(frozen=True, kw_only=True)
class Built:
    """One image's outcome: built now or already current, and how long that took."""

    spec: ImageSpec
    digest: str
    size: int
    seconds: float
    rebuilt: bool


def images_dir() -> Path:
    return project.root() / ".tools" / "images"


def uv_version(root: Path) -> str:
    match = re.search(r"^ARG UV_VERSION=(\S+)$", (root / "images" / "steps.Dockerfile").read_text(), re.MULTILINE)
    if match is None:
        raise ImagesError("images/steps.Dockerfile: no `ARG UV_VERSION=` line")
    return match.group(1)


def steps_reference() -> str:
    """The local env's image reference: what its rendered WorkflowTemplates run."""
    return load_config("local").image.ref()


def _hash_paths(digest: hashlib._Hash, root: Path, names: Iterable[str]) -> None:
    for name in names:
        path = root / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts or file.suffix == ".pyc":
                continue
            digest.update(str(file.relative_to(root)).encode() + b"\0" + file.read_bytes() + b"\0")


def _stamp(spec: ImageSpec, ctx: recipes.Context, stamps: dict[str, str]) -> str:
    # The recipes' own code is an input too: a changed recipe rebuilds what it makes.
    digest = hashlib.sha256(Path(recipes.__file__).read_bytes() + f"\0{spec!r}\0".encode())
    for name in spec.depends:
        digest.update(stamps[name].encode())
    if spec.kind == "python-base":
        digest.update(
            repr((catalog.SUITE, catalog.MIRROR, catalog.PYTHON_PACKAGES, recipes.EXCLUDES, recipes.UV_CONFIG)).encode()
        )
    elif spec.kind == "dockerfile":
        _hash_paths(digest, ctx.root, STEPS_INPUTS)
        digest.update(repr(sorted(ctx.build_args.items())).encode())
    elif spec.kind == "uv":
        digest.update(ctx.uv_version.encode())
    else:
        sources = {"argosay": ctx.argosay, "argoexec": ctx.argoexec, "busybox-base": ctx.buildah.tools.busybox}
        pause = ctx.root / "images" / "pause" / "pause.c"
        source = sources.get(spec.kind, pause if spec.kind == "pause" else None)
        if source is not None:
            digest.update(source.read_bytes())
    return digest.hexdigest()


def _context(buildah: Buildah, scratch: Path) -> recipes.Context:
    root = project.root()
    version = uv_version(root)
    return recipes.Context(
        buildah=buildah,
        root=root,
        scratch=scratch,
        uv_version=version,
        argosay=argo_module.module_dir() / "test" / "e2e" / "images" / "argosay" / "v2" / "argosay",
        argoexec=root / ".tools" / "bin" / "argoexec",  # static (.ci/install.d/50-control-plane.sh)
        build_args={
            "PYTHON_IMAGE": catalog.PYTHON_BASE,
            "UV_IMAGE": f"localhost/kiosk-uv:{version}",
            "VERSION": "dev",
        },
    )


def build_all(
    *,
    only: set[str] | None = None,
    output: Path | None = None,
    on_start: Callable[[ImageSpec, bool], None] = lambda spec, rebuild: None,
) -> list[Built]:
    """Build (or keep) every image, bases first; `only` limits it to those names and what they need.

    Archives, stamps and the index go to `output` (default `.tools/images`).
    """
    buildah = Buildah(tools=find_tools())
    directory = output or images_dir()
    (directory / "stamps").mkdir(parents=True, exist_ok=True)
    specs = catalog.catalog(
        uv_version=uv_version(project.root()), steps_tag=steps_reference(), executor_image=EXECUTOR_IMAGE
    )
    wanted = _closure(specs, only) if only else {spec.name for spec in specs}
    index = archive.read_index(directory)
    stamps: dict[str, str] = {}
    results: list[Built] = []
    with tempfile.TemporaryDirectory(prefix="kiosk-images-") as scratch:
        ctx = _context(buildah, Path(scratch))
        for spec in specs:
            if spec.name not in wanted:
                continue
            stamps[spec.name] = _stamp(spec, ctx, stamps)
            results.append(_one(ctx, spec, directory, stamps[spec.name], index, on_start))
            archive.write_index(directory, index)
    return results


def _one(
    ctx: recipes.Context,
    spec: ImageSpec,
    directory: Path,
    stamp: str,
    index: dict,
    on_start: Callable[[ImageSpec, bool], None],
) -> Built:
    stamp_file, tar = directory / "stamps" / spec.name, directory / f"{spec.name}.tar"
    current = (
        stamp_file.is_file()
        and stamp_file.read_text() == stamp
        and tar.is_file()
        and spec.name in index
        and all(ctx.buildah.exists(reference) for reference in spec.references[:1])
    )
    on_start(spec, not current)
    start = time.monotonic()
    if not current:
        stamp_file.unlink(missing_ok=True)
        replaced = ctx.buildah.image_id(spec.reference)
        recipes.RECIPES[spec.kind](ctx, spec)
        for alias in spec.references[1:]:
            ctx.buildah("tag", spec.reference, alias, what=f"tag {alias}")
        digest = archive.export(ctx.buildah, spec, tar)
        index[spec.name] = {
            "reference": spec.reference,
            "references": list(spec.references),
            "digest": digest,
            "archive": tar.name,
            "size": tar.stat().st_size,
            "stand_in": spec.stands_in,
        }
        stamp_file.write_text(stamp)
        if replaced and replaced != ctx.buildah.image_id(spec.reference):
            ctx.buildah.forget(replaced)
    entry = index[spec.name]
    return Built(
        spec=spec, digest=entry["digest"], size=entry["size"], seconds=time.monotonic() - start, rebuilt=not current
    )


def _closure(specs: list[ImageSpec], only: set[str]) -> set[str]:
    by_name = {spec.name: spec for spec in specs}
    unknown = only - by_name.keys()
    if unknown:
        raise ImagesError(f"unknown image {', '.join(sorted(unknown))}: choose from {', '.join(by_name)}")
    wanted: set[str] = set()
    pending = list(only)
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(by_name[name].depends)
    return wanted
