"""How each kind of image is made: every recipe leaves the image tagged `spec.reference` in buildah's store."""

from __future__ import annotations

import io
import shlex
import tarfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pipelines.images import catalog
from pipelines.images._buildah import Buildah, ImagesError, run
from pipelines.images.catalog import ImageSpec

#: Docs, man pages and translations are dropped from the Debian rootfs, as python:slim drops them.
EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*")
#: The host's trust store, bind-mounted over Debian's for the build's RUN steps only: uv inside the
#: build reaches PyPI through whatever TLS proxy the host trusts; the image keeps Debian's own store.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
#: The python base's uv config: uv uses the system trust store (its built-in roots otherwise). A file
#: of the base, not a build mount, which would leave its mount point behind in the image's layer.
UV_CONFIG = "system-certs = true\n"


@dataclass(frozen=True, kw_only=True)
class Context:
    """What every recipe may need: buildah, the checkout, a scratch directory, the Dockerfile's args."""

    buildah: Buildah
    root: Path
    scratch: Path
    uv_version: str
    argosay: Path
    argoexec: Path
    build_args: dict[str, str]


Recipe = Callable[[Context, ImageSpec], None]


def _from_tar(ctx: Context, spec: ImageSpec, rootfs: Path) -> None:
    """An image whose one layer is the tree in `rootfs` (buildah extracts a local tar it adds)."""
    container = ctx.buildah.from_(spec.base or "scratch")
    ctx.buildah("add", container, str(rootfs), "/", what=f"add {rootfs.name}")
    ctx.buildah.config(container, entrypoint=spec.entrypoint, cmd=spec.cmd)
    ctx.buildah.commit(container, spec.reference)


def python_base(ctx: Context, spec: ImageSpec) -> None:
    """Bookworm minbase + python3 from Debian, with `/usr/local/bin/python3` and `python` where
    python:slim has them (upstream's examples run `python`).
    """
    rootfs = ctx.scratch / "python-rootfs.tar"
    argv = [str(ctx.buildah.tools.mmdebstrap), "--variant=minbase", f"--include={','.join(catalog.PYTHON_PACKAGES)}"]
    argv += [f"--dpkgopt=path-exclude={pattern}" for pattern in EXCLUDES]
    argv += ['--customize-hook=ln -sf /usr/bin/python3 "$1/usr/local/bin/python3"']
    argv += ['--customize-hook=ln -sf /usr/bin/python3 "$1/usr/local/bin/python"']
    argv += ['--customize-hook=rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/*']
    argv += [f'--customize-hook=mkdir -p "$1/etc/uv" && printf %s {shlex.quote(UV_CONFIG)} > "$1/etc/uv/uv.toml"']
    argv += [catalog.SUITE, str(rootfs), catalog.MIRROR]
    run(argv, what="mmdebstrap of the python base")
    container = ctx.buildah.from_("scratch")
    ctx.buildah("add", container, str(rootfs), "/", what="add the python rootfs")
    env = ["--env", "PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin", "--env", "LANG=C.UTF-8"]
    ctx.buildah("config", *env, container, what="buildah config")
    ctx.buildah.config(container, entrypoint=(), cmd=("python3",))
    ctx.buildah.commit(container, spec.reference)
    rootfs.unlink()


def _tar_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _tar_dir(tar: tarfile.TarFile, name: str, mode: int = 0o755) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    tar.addfile(info)


def busybox_base(ctx: Context, spec: ImageSpec) -> None:
    """Debian's static busybox as /bin/busybox with a link per applet, plus root and nobody users."""
    busybox = ctx.buildah.tools.busybox
    applets = run([str(busybox), "--list-full"], what="busybox --list-full").split()
    rootfs = ctx.scratch / "busybox-rootfs.tar"
    with tarfile.open(rootfs, "w") as tar:
        for directory in ("bin", "sbin", "usr", "usr/bin", "usr/sbin", "etc", "root", "var"):
            _tar_dir(tar, directory)
        _tar_dir(tar, "tmp", 0o1777)
        tar.add(busybox, "bin/busybox")
        for applet in applets:
            if applet != "bin/busybox":
                link = tarfile.TarInfo(applet)
                link.type, link.linkname = tarfile.SYMTYPE, "/bin/busybox"
                tar.addfile(link)
        _tar_bytes(tar, "etc/passwd", b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")
        _tar_bytes(tar, "etc/group", b"root:x:0:\nnogroup:x:65534:\n")
    _from_tar(ctx, spec, rootfs)
    rootfs.unlink()


def uv_image(ctx: Context, spec: ImageSpec) -> None:
    """`/uv` from uv's PyPI wheel (the version the Dockerfile's UV_VERSION names), as ghcr.io/astral-sh/uv has it."""
    wheels = ctx.scratch / "uv-wheel"
    argv = ["uv", "run", "--no-project", "--with", "pip", "--", "python", "-m", "pip", "download", "--quiet"]
    argv += ["--no-deps", "--only-binary=:all:", "--dest", str(wheels), f"uv=={ctx.uv_version}"]
    run(argv, what=f"download of uv {ctx.uv_version}'s wheel")
    (wheel,) = wheels.glob("uv-*.whl")
    rootfs = ctx.scratch / "uv-rootfs.tar"
    with zipfile.ZipFile(wheel) as archive, tarfile.open(rootfs, "w") as tar:
        for binary in ("uv", "uvx"):
            _tar_bytes(tar, binary, archive.read(f"uv-{ctx.uv_version}.data/scripts/{binary}"), 0o755)
    _from_tar(ctx, spec, rootfs)
    rootfs.unlink()


def dockerfile(ctx: Context, spec: ImageSpec) -> None:
    """The project's own Dockerfile, unmodified; the bases come in by build args."""
    argv = ["build", "--runtime", str(ctx.buildah.tools.runc), "--network", "host", "--pull-never", "--layers"]
    if HOST_CA_BUNDLE.is_file():
        argv += ["--volume", f"{HOST_CA_BUNDLE}:/etc/ssl/certs/ca-certificates.crt:ro"]
    for key, value in ctx.build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    argv += ["-f", "images/steps.Dockerfile", "-t", spec.reference, "."]
    ctx.buildah(*argv, what=f"buildah build of {spec.reference}", cwd=ctx.root)


def argosay(ctx: Context, spec: ImageSpec) -> None:
    """Upstream's argosay:v2 Dockerfile (`ADD argosay /`, `ENTRYPOINT ["/argosay"]`) on the busybox base."""
    rootfs = ctx.scratch / "argosay.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(ctx.argosay, "argosay", filter=lambda info: _mode(info, 0o755))
    _from_tar(ctx, spec, rootfs)
    rootfs.unlink()


def _mode(info: tarfile.TarInfo, mode: int) -> tarfile.TarInfo:
    info.mode, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, "root", "root"
    return info


def stand_in(ctx: Context, spec: ImageSpec) -> None:
    """The base itself under the public names (a shell and the usual tools), nothing added."""
    container = ctx.buildah.from_(spec.base)
    ctx.buildah.config(container, entrypoint=spec.entrypoint, cmd=spec.cmd)
    ctx.buildah.commit(container, spec.reference)


def pause(ctx: Context, spec: ImageSpec) -> None:
    """images/pause/pause.c, compiled static: the image is that one file."""
    binary = ctx.scratch / "pause"
    source = ctx.root / "images" / "pause" / "pause.c"
    run([str(ctx.buildah.tools.gcc), "-static", "-Os", "-s", "-o", str(binary), str(source)], what="gcc of pause.c")
    rootfs = ctx.scratch / "pause.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(binary, "pause", filter=lambda info: _mode(info, 0o755))
    _from_tar(ctx, spec, rootfs)
    rootfs.unlink()


def argoexec(ctx: Context, spec: ImageSpec) -> None:
    """The static argoexec at /bin/argoexec, where upstream's image has it."""
    if not is_static(ctx.argoexec):
        raise ImagesError(
            f"{ctx.argoexec} is dynamically linked: build it with CGO_ENABLED=0 (.ci/install.d/60-images.sh)"
        )
    rootfs = ctx.scratch / "argoexec.tar"
    with tarfile.open(rootfs, "w") as tar:
        tar.add(ctx.argoexec, "bin/argoexec", filter=lambda info: _mode(info, 0o755))
    _from_tar(ctx, spec, rootfs)
    rootfs.unlink()


def is_static(binary: Path) -> bool:
    """An ELF64 without a program interpreter (PT_INTERP) needs no dynamic loader in the image."""
    with binary.open("rb") as elf:
        header = elf.read(64)
        if header[:5] != b"\x7fELF\x02":
            raise ImagesError(f"{binary} is not a 64-bit ELF executable")
        offset = int.from_bytes(header[32:40], "little")
        size, count = int.from_bytes(header[54:56], "little"), int.from_bytes(header[56:58], "little")
        elf.seek(offset)
        headers = [elf.read(size) for _ in range(count)]
    return all(int.from_bytes(entry[:4], "little") != _PT_INTERP for entry in headers)


_PT_INTERP = 3


RECIPES: dict[str, Recipe] = {
    "python-base": python_base,
    "busybox-base": busybox_base,
    "uv": uv_image,
    "dockerfile": dockerfile,
    "argosay": argosay,
    "stand-in": stand_in,
    "pause": pause,
    "argoexec": argoexec,
}
