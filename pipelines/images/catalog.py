"""Which images `kiosk images build` makes, from what, and under which references.

Each image is one OCI archive `.tools/images/<name>.tar` holding every reference in `references`
(the first is the one buildah tags). Upstream's public images that Argo's examples name are
stand-ins: a small image on our own busybox or python base, loaded under the public name, so the
examples run without a registry (docs/cluster.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

#: What an image is built from: a Debian rootfs (mmdebstrap), a file tree, a Dockerfile or a base plus files.
Kind = Literal["python-base", "busybox-base", "uv", "dockerfile", "argosay", "stand-in", "pause", "argoexec"]

PYTHON_BASE = "localhost/kiosk-base-python:bookworm"
BUSYBOX_BASE = "localhost/kiosk-base-busybox:bookworm"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
#: Debian's python3 in bookworm is 3.11, the Dockerfile's `python:3.11-*-bookworm` line; passwd gives
#: the Dockerfile's groupadd/useradd, ca-certificates the trust store python:slim also ships.
PYTHON_PACKAGES = ("python3", "passwd", "ca-certificates")


@dataclass(frozen=True, kw_only=True)
class ImageSpec:
    """One image: its archive name, references (first = the tag buildah gives it) and recipe."""

    name: str
    kind: Kind
    references: tuple[str, ...]
    base: str = ""
    stands_in: bool = False
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    depends: tuple[str, ...] = field(default=())

    @property
    def reference(self) -> str:
        return self.references[0]


def _stand_in(name: str, base_image: str, *references: str) -> ImageSpec:
    base_name = "base-python" if base_image == PYTHON_BASE else "base-busybox"
    return ImageSpec(
        name=name,
        kind="stand-in",
        references=references,
        base=base_image,
        stands_in=True,
        cmd=("/bin/sh",),
        depends=(base_name,),
    )


def catalog(*, uv_version: str, steps_tag: str, executor_image: str) -> list[ImageSpec]:
    """Every image, bases first (a dependency always comes before the images built on it)."""
    return [
        ImageSpec(name="base-python", kind="python-base", references=(PYTHON_BASE,)),
        ImageSpec(name="base-busybox", kind="busybox-base", references=(BUSYBOX_BASE,), cmd=("/bin/sh",)),
        ImageSpec(name="uv", kind="uv", references=(f"localhost/kiosk-uv:{uv_version}",)),
        ImageSpec(
            name="kiosk-steps",
            kind="dockerfile",
            references=(steps_tag,),
            depends=("base-python", "uv"),
        ),
        ImageSpec(
            name="argosay",
            kind="argosay",
            references=("docker.io/argoproj/argosay:v2",),
            base=BUSYBOX_BASE,
            entrypoint=("/argosay",),
            depends=("base-busybox",),
        ),
        _stand_in(
            "busybox",
            BUSYBOX_BASE,
            "docker.io/library/busybox:latest",
            "docker.io/library/alpine:3.23",
            "docker.io/library/alpine:latest",
        ),
        _stand_in(
            "python",
            PYTHON_BASE,
            "docker.io/library/python:alpine3.23",
            "docker.io/library/debian:latest",
            "docker.io/library/ubuntu:latest",
        ),
        ImageSpec(name="pause", kind="pause", references=("registry.k8s.io/pause:3.10",), entrypoint=("/pause",)),
        ImageSpec(
            name="argoexec",
            kind="argoexec",
            references=(executor_image,),
            base=BUSYBOX_BASE,
            entrypoint=("argoexec",),
            depends=("base-busybox",),
        ),
    ]
