"""A pod's volumes as per-pod directories, and the mount-namespace script that places them.

Each container runs in its own mount namespace (`unshare --mount`, as the local runner does):
- a private `/run` (so `/var/run/argo`, the executor's volume, and the service-account token at
  `/var/run/secrets/kubernetes.io/serviceaccount` are per pod, as on a node);
- a private `/tmp`, the container's own unless a volume is mounted there (each container of a pod
  has its own root filesystem);
- each volumeMount bound from the pod's directory. emptyDir, configMap, secret, projected
  (ConfigMap/Secret/serviceAccountToken/downwardAPI items) and downwardAPI volumes are supported;
  hostPath and everything else fail the pod: the agent never binds host paths.
Paths of the host the container must still reach (the repo, the workdir, the interpreter) are bound
back at the same place inside a private `/tmp`. The cluster's own directory (its PKI, admin and
controller kubeconfigs, etcd data, and every pod's tokens and secret volumes) is covered by an empty
tmpfs in each container, so a pod reads only what its own volumes give it.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any

from pipelines.cluster.agent.env import EnvError, Resolver

RUN = os.path.realpath("/var/run")
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def materialize(pod: Any, resolver: Resolver, pod_dir: Path, token: str | None, ca: str) -> dict[str, Path]:
    """Create each volume's directory under `pod_dir/volumes`; volume name -> host directory."""
    dirs = {}
    for volume in pod.spec.volumes or []:
        host = pod_dir / "volumes" / volume.name
        host.mkdir(parents=True, exist_ok=True)
        if volume.empty_dir is not None:
            pass
        elif volume.config_map is not None:
            _write_items(host, resolver.configmap(volume.config_map.name), volume.config_map, "configmap")
        elif volume.secret is not None:
            _write_items(host, resolver.secret(volume.secret.secret_name), volume.secret, "secret")
        elif volume.projected is not None:
            for source in volume.projected.sources or []:
                _project(host, source, resolver, token, ca)
        elif volume.downward_api is not None:
            for item in volume.downward_api.items or []:
                _write(host / item.path, resolver.field(item.field_ref.field_path))
        else:
            raise EnvError(f"volume {volume.name!r}: only emptyDir, configMap, secret and projected are supported")
        dirs[volume.name] = host
    if token is not None:
        account = pod_dir / "serviceaccount"
        _write(account / "token", token)
        _write(account / "ca.crt", ca)
        _write(account / "namespace", pod.metadata.namespace)
        dirs[" serviceaccount"] = account
    return dirs


def _project(host: Path, source: Any, resolver: Resolver, token: str | None, ca: str) -> None:
    if source.service_account_token is not None:
        if token is not None:
            _write(host / source.service_account_token.path, token)
    elif source.config_map is not None:
        _write_items(host, resolver.configmap(source.config_map.name), source.config_map, "configmap")
        if source.config_map.name == "kube-root-ca.crt":
            _write(host / "ca.crt", ca)
    elif source.secret is not None:
        _write_items(host, resolver.secret(source.secret.name), source.secret, "secret")
    elif source.downward_api is not None:
        for item in source.downward_api.items or []:
            _write(host / item.path, resolver.field(item.field_ref.field_path))


def _write_items(host: Path, data: dict[str, str] | None, ref: Any, kind: str) -> None:
    name = getattr(ref, "name", None) or getattr(ref, "secret_name", None)
    if data is None:
        if ref.optional:
            return
        raise EnvError(f"{kind} {name!r} not found")
    items = ref.items or [type("Item", (), {"key": k, "path": k})() for k in data]
    for item in items:
        if item.key not in data:
            raise EnvError(f"key {item.key!r} not found in {kind} {name!r}")
        _write(host / item.path, data[item.key])


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _canonical(path: str) -> str:
    """Mount targets under /var/run live under /run here (/var/run is a link)."""
    if _inside(path, "/var/run"):
        return RUN + path[len("/var/run") :]
    return path.rstrip("/") or "/"


def mount_script(
    container: Any,
    volumes: dict[str, Path],
    container_dir: Path,
    keep: list[Path],
    automount: bool,
    hide: tuple[Path, ...] = (),
) -> list[str]:
    """Shell lines that build the container's mounts inside its private namespace; each `hide` path
    is covered last by an empty tmpfs (the mounts made before stay reachable where they were placed).
    """
    run_dir, tmp_dir = container_dir / "run", container_dir / "tmp"
    run_dir.mkdir(parents=True, exist_ok=True)
    tmp_dir.mkdir(parents=True, exist_ok=True)
    mounts: dict[str, tuple[Path, bool]] = {}
    for mount in container.volume_mounts or []:
        if mount.name not in volumes:
            raise EnvError(f"container {container.name!r}: volumeMount {mount.name!r} has no volume")
        host = volumes[mount.name] / (mount.sub_path or "")
        if not host.exists():  # as the kubelet does: a missing subPath becomes a directory
            host.mkdir(parents=True)
        mounts[_canonical(mount.mount_path)] = (host, bool(mount.read_only))
    if automount and " serviceaccount" in volumes and _canonical(SERVICE_ACCOUNT_DIR) not in mounts:
        mounts[_canonical(SERVICE_ACCOUNT_DIR)] = (volumes[" serviceaccount"], True)
    private_tmp = mounts.pop("/tmp", (tmp_dir, False))[0]
    lines = ["set -e", f"mount --bind {q(run_dir)} {q(RUN)}"]
    for path in keep:
        if _inside(str(path), "/tmp"):
            inner = private_tmp / path.relative_to("/tmp")
            lines += [f"mkdir -p {q(inner)}", f"mount --bind {q(path)} {q(inner)}"]
    lines.append(f"mount --rbind {q(private_tmp)} /tmp")
    for target in sorted(mounts, key=len):  # parents before children
        host, read_only = mounts[target]
        # A subPath may name a file (an input artifact the init container downloaded): a file target.
        place = (
            [f"mkdir -p {q(Path(target).parent)}", f"touch {q(target)}"]
            if host.is_file()
            else [f"mkdir -p {q(target)}"]
        )
        lines += [*place, f"mount --bind {q(host)} {q(target)}"]
        if read_only:
            lines.append(f"mount -o remount,bind,ro {q(target)}")
    lines += _working_dir(container.working_dir, mounts, private_tmp, container_dir / "work")
    lines += [f"mount -t tmpfs -o size=64k,mode=0755 kiosk-hidden {q(path)}" for path in hide]
    return lines


def _working_dir(declared: str | None, mounts: dict[str, tuple[Path, bool]], tmp: Path, work: Path) -> list[str]:
    """A container starts in a directory of its own, never the checkout: its private `/tmp` unless it
    declares a `workingDir` (the image's WORKDIR on a node). That is entered as it is where a volume
    or the private `/tmp` holds it; elsewhere `work` is bound there first, since the host's root
    filesystem stands in for the image's and is shared by every pod. (Not `work` itself: it lies in
    the cluster's directory, which the tmpfs covers, and a process pool's children chdir to their
    parent's cwd by path.)
    """
    work.mkdir(parents=True, exist_ok=True)
    if not declared:
        return ["cd /tmp"]
    target = _canonical(declared)
    if _inside(target, "/tmp") or any(_inside(target, m) for m in mounts):
        return [f"mkdir -p {q(target)}", f"cd {q(target)}"]
    if target == "/" or (Path(target).is_dir() and any(Path(target).iterdir())):
        raise EnvError(f"workingDir {declared!r} is a directory of this host: give it a volume, or use one under /tmp")
    return [f"mkdir -p {q(target)}", f"mount --bind {q(work)} {q(target)}", f"cd {q(target)}"]


def q(value: object) -> str:
    return shlex.quote(str(value))
