"""Run an image's container with runc directly, no kubelet: unpack an OCI archive into a bundle whose
config.json applies a Kubernetes securityContext and resource limits the way containerd would.

Used by the image tests (a step container's hardening) and free for anyone who needs one container
without a node. The seccomp profile is a small deny-list (mode 2, "filter"), not containerd's full
RuntimeDefault: what the tests see is that a filter is installed, as it is on the cluster.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Syscalls the deny-list refuses with EPERM (a subset of what RuntimeDefault refuses).
DENIED_SYSCALLS = (
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "init_module",
    "finit_module",
    "delete_module",
    "open_by_handle_at",
    "bpf",
    "userfaultfd",
)
_WHITEOUT, _OPAQUE = ".wh.", ".wh..wh..opq"


def _blob(layout: tarfile.TarFile, digest: str) -> Any:
    member = layout.extractfile("blobs/" + digest.replace(":", "/"))
    if member is None:
        raise ValueError(f"blob {digest} missing from the archive")
    return member


def unpack(archive: Path, rootfs: Path, reference: str = "") -> dict[str, Any]:
    """Extract the image (by `reference`, else the first) into `rootfs`; return its OCI config."""
    with tarfile.open(archive) as layout:
        manifests = json.load(_blob_path(layout, "index.json"))["manifests"]
        chosen = next(
            (m for m in manifests if m.get("annotations", {}).get("io.containerd.image.name") == reference),
            manifests[0],
        )
        manifest = json.load(_blob(layout, chosen["digest"]))
        config = json.load(_blob(layout, manifest["config"]["digest"]))
        rootfs.mkdir(parents=True, exist_ok=True)
        for layer in manifest["layers"]:
            with tarfile.open(fileobj=_blob(layout, layer["digest"]), mode="r|*") as tar:
                _apply_layer(tar, rootfs)
    return config


def _blob_path(layout: tarfile.TarFile, name: str) -> Any:
    member = layout.extractfile(name)
    if member is None:
        raise ValueError(f"{name} missing from the archive")
    return member


def _apply_layer(tar: tarfile.TarFile, rootfs: Path) -> None:
    """One layer on top of the others: whiteouts delete, opaque markers empty a directory."""
    for member in tar:
        path = Path(member.name)
        if path.name == _OPAQUE:
            target = rootfs / path.parent
            for child in target.iterdir() if target.is_dir() else ():
                _remove(child)
            continue
        if path.name.startswith(_WHITEOUT):
            _remove(rootfs / path.parent / path.name[len(_WHITEOUT) :])
            continue
        existing = rootfs / path
        if existing.is_symlink() or (existing.exists() and not (existing.is_dir() and member.isdir())):
            _remove(existing)
        tar.extract(member, rootfs, set_attrs=True, numeric_owner=True, filter="fully_trusted")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclass(frozen=True, kw_only=True)
class Limits:
    """A container's resources.limits: memory in bytes, CPU in millicores (0 = none)."""

    memory: int = 0
    cpu_millis: int = 0


@dataclass(frozen=True, kw_only=True)
class Security:
    """The parts of a pod + container securityContext that runc enforces."""

    uid: int
    gid: int
    read_only_root: bool = True
    drop_all: bool = True
    no_new_privileges: bool = True
    seccomp: bool = True
    tmpfs: tuple[str, ...] = ("/tmp",)

    @classmethod
    def from_rendered(cls, pod: dict[str, Any], container: dict[str, Any]) -> Security:
        """From a rendered template's pod `securityContext` and its container (securityContext, mounts)."""
        merged = {**pod, **container.get("securityContext", {})}
        drop = merged.get("capabilities", {}).get("drop", [])
        mounts = tuple(m["mountPath"] for m in container.get("volumeMounts", []))
        return cls(
            uid=int(merged["runAsUser"]),
            gid=int(merged.get("runAsGroup", merged["runAsUser"])),
            read_only_root=bool(merged.get("readOnlyRootFilesystem", False)),
            drop_all="ALL" in drop,
            no_new_privileges=merged.get("allowPrivilegeEscalation") is False,
            seccomp=merged.get("seccompProfile", {}).get("type") == "RuntimeDefault",
            tmpfs=mounts or ("/tmp",),
        )


@dataclass(frozen=True, kw_only=True)
class Bundle:
    """An unpacked image plus the process, security and limits `config.json` gives runc."""

    path: Path
    image_config: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, *, archive: Path, path: Path, reference: str = "") -> Bundle:
        config = unpack(archive, path / "rootfs", reference)
        return cls(path=path, image_config=config.get("config", {}))

    def spec(self, args: list[str], *, security: Security, limits: Limits = Limits()) -> dict[str, Any]:
        env = self.image_config.get("Env", [])
        mounts = [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {
                "destination": "/dev",
                "type": "tmpfs",
                "source": "tmpfs",
                "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
            },
            {
                "destination": "/dev/pts",
                "type": "devpts",
                "source": "devpts",
                "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
            },
            {
                "destination": "/dev/shm",
                "type": "tmpfs",
                "source": "shm",
                "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
            },
            {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]},
        ]
        mounts += [
            {"destination": d, "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777"]}
            for d in security.tmpfs
        ]
        resources: dict[str, Any] = {}
        if limits.memory:
            resources["memory"] = {"limit": limits.memory, "swap": limits.memory}
        if limits.cpu_millis:
            resources["cpu"] = {"quota": limits.cpu_millis * 100, "period": 100000}
        linux: dict[str, Any] = {
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
            "resources": resources,
            "maskedPaths": ["/proc/kcore", "/proc/keys", "/proc/timer_list", "/sys/firmware"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"],
        }
        if security.seccomp:
            rule = {"names": list(DENIED_SYSCALLS), "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            linux["seccomp"] = {
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64"],
                "syscalls": [rule],
            }
        caps: list[str] = [] if security.drop_all else ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
        return {
            "ociVersion": "1.0.2",
            "process": {
                "terminal": False,
                "user": {"uid": security.uid, "gid": security.gid},
                "args": args,
                "env": env,
                "cwd": self.image_config.get("WorkingDir") or "/",
                "capabilities": dict.fromkeys(("bounding", "effective", "permitted", "inheritable", "ambient"), caps),
                "noNewPrivileges": security.no_new_privileges,
            },
            "root": {"path": "rootfs", "readonly": security.read_only_root},
            "hostname": "step",
            "mounts": mounts,
            "linux": linux,
        }

    def run(
        self, runc: Path, args: list[str], *, security: Security, limits: Limits = Limits(), timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run `args` to completion in a fresh container (its own runc state dir); stdout/stderr captured."""
        (self.path / "config.json").write_text(json.dumps(self.spec(args, security=security, limits=limits)))
        state = self.path / "runc-state"
        state.mkdir(exist_ok=True)
        name = f"kiosk-{uuid.uuid4().hex[:12]}"
        argv = [str(runc), "--root", str(state), "run", "--bundle", str(self.path), name]
        try:
            return subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
                check=False,
                env={**os.environ},
            )
        finally:
            subprocess.run(
                [str(runc), "--root", str(state), "delete", "--force", name], capture_output=True, check=False
            )
