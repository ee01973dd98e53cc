"""`kiosk cluster up --with argocd`: a real Argo CD syncing the local env from a local git server.

Four processes beside the control plane, each leading its own process group and recorded in the
cluster's state.json (ports too):
- `argocd-git`: `git daemon` on 127.0.0.1 serving a clone of this repository (pipelines/cluster/_gitserver.py)
  at the local env's `gitops.repo_url`;
- `argocd-redis`: Debian's redis-server, Argo CD's cache;
- `argocd-repo-server`, `argocd-application-controller`: `.tools/bin/argocd` (built from the
  pinned argo-cd module by .ci/install.d/55-argocd.sh), the role picked by ARGOCD_BINARY_NAME.
`start` then applies `argocd/apps/local/` (the AppProject first, in sync-wave order), so the local
tree syncs with no further command. The interface for the `--with` registry: `start(state)`,
`stop(state)`, `status(state)`.
"""

from __future__ import annotations

import base64
import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pipelines import render
from pipelines.cluster import _argocd_objects as objects
from pipelines.cluster import _gitserver as gitserver
from pipelines.cluster import bootstrap, kube
from pipelines.cluster.state import ClusterState, free_port, stop_group
from pipelines.config import KioskConfig, load_config
from pipelines.gitops import LOCAL_ENV
from pipelines.tools import TOOLS_BIN, find_tool

PROCESSES = ("argocd-git", "argocd-redis", "argocd-repo-server", "argocd-application-controller")
TOOLS = ("argocd", "redis-server", "git", "helm", "git-verify-wrapper.sh", "gpg-wrapper.sh")
READY_TIMEOUT_S = 90.0
WAVE = "argocd.argoproj.io/sync-wave"


class ArgoCDError(RuntimeError):
    pass


def status(state: ClusterState) -> dict[str, bool]:
    """Each Argo CD process of this cluster and whether it runs (all False when never started)."""
    return {name: state.alive(name) for name in PROCESSES}


def git_server(state: ClusterState) -> gitserver.GitServer:
    return gitserver.GitServer.from_url(load_config(LOCAL_ENV).gitops.repo_url, state.root / "argocd" / "git")


def start(state: ClusterState, *, progress: Callable[[str], None] = lambda _: None, apply_apps: bool = True) -> str:
    """Start Argo CD on a running cluster (a no-op when it runs); returns the git server's URL."""
    server = git_server(state)
    alive = status(state)
    if all(alive.values()):
        return server.url
    if any(alive.values()):
        stop(state)
    tools = _tools()
    cfg = load_config(LOCAL_ENV)
    home = state.root / "argocd"
    for sub in ("git", "tmp", "gnupg", "ssh", "tls"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    try:
        progress("git server")
        gitserver.seed(server, cfg.gitops.revision)
        if _listening(server.port):  # else the wait below would find the other server
            raise ArgoCDError(f"127.0.0.1:{server.port} (gitops.repo_url) is taken: is another cluster's Argo CD up?")
        _spawn(state, "argocd-git", gitserver.daemon_argv(tools["git"], server))
        _wait_port(state, "argocd-git", server.port)
        progress("redis")
        state.ports.update({"argocd-redis": free_port(), "argocd-repo-server": free_port()})
        state.ports.update({"argocd-repo-server-metrics": free_port(), "argocd-controller-metrics": free_port()})
        _spawn(state, "argocd-redis", _redis_argv(tools["redis-server"], state))
        _wait_port(state, "argocd-redis", state.ports["argocd-redis"])
        progress("Argo CD's CRDs and config")
        api = bootstrap.client(state.kubeconfig)
        settings = objects.Settings(
            namespace=cfg.gitops.argocd_namespace, repo_url=server.url, secret_key=_secret_key(api, cfg)
        )
        _install(api, settings, cfg.observability.grafana_namespace)
        progress("argocd-repo-server")
        env = _env(state, settings)
        _spawn(state, "argocd-repo-server", _repo_server_argv(tools["argocd"], state), env)
        _wait_port(state, "argocd-repo-server", state.ports["argocd-repo-server"])
        progress("argocd-application-controller")
        argv = _controller_argv(tools["argocd"], state, settings.namespace)
        _spawn(state, "argocd-application-controller", argv, env)
        _wait_healthz(state, state.ports["argocd-controller-metrics"])
        if apply_apps:
            progress("the local AppProject and Applications")
            apply_local_apps(DynamicClient(api))
    except BaseException:
        stop(state)
        raise
    state.save()
    return server.url


def stop(state: ClusterState) -> list[str]:
    """Stop this cluster's Argo CD processes (controller first); returns the names it stopped."""
    stopped = []
    for name in reversed(PROCESSES):
        entry = state.pids.get(name)
        if entry:
            if state.alive(name):
                stopped.append(name)
            stop_group(entry[0], entry[1])
            del state.pids[name]
    if state.path.parent.is_dir():
        state.save()
    return stopped


def local_app_documents() -> list[dict[str, Any]]:
    """`argocd/apps/local/` as `kiosk render` writes it, in sync-wave order (the AppProject first)."""
    files = {p: t for p, t in render.render_apps().items() if p.parent == render.LOCAL_APPS_DIR}
    docs = [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]
    return sorted(docs, key=lambda d: int(d["metadata"].get("annotations", {}).get(WAVE, "0")))


def apply_local_apps(dynamic: DynamicClient) -> None:
    rejected = [r for r in kube.apply(dynamic, local_app_documents()) if r.result == "rejected"]
    if rejected:
        raise ArgoCDError("; ".join(f"{r.kind}/{r.name}: {r.message}" for r in rejected))


def push_hint(url: str) -> str:
    revision = load_config(LOCAL_ENV).gitops.revision
    return (
        f"Argo CD syncs argocd/apps/local/ from {url} (branch {revision}). To merge a change:\n"
        f"  uv run kiosk render && git commit -am '...' && git push {url} HEAD:{revision}"
    )


def _tools() -> dict[str, Path]:
    found = {name: find_tool(name) for name in TOOLS}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        raise ArgoCDError(
            f"not installed: {', '.join(missing)}; run `bash .ci/install.d/55-argocd.sh` "
            "(redis-server: .ci/install.d/40-debian-packages.sh)"
        )
    return {name: path for name, path in found.items() if path is not None}


def _secret_key(api: k8s.ApiClient, cfg: KioskConfig) -> str:
    """The existing `server.secretkey` (a restart keeps it), else a new one."""
    try:
        secret = k8s.CoreV1Api(api).read_namespaced_secret("argocd-secret", cfg.gitops.argocd_namespace)
    except ApiException as error:
        if error.status == 404:
            return objects.new_secret_key()
        raise
    key = (secret.data or {}).get("server.secretkey")
    return base64.b64decode(key).decode() if key else objects.new_secret_key()


def _install(api: k8s.ApiClient, settings: objects.Settings, grafana_namespace: str) -> None:
    crds = objects.crd_documents()
    _apply(DynamicClient(api), crds)
    bootstrap.wait_established(api, [crd["metadata"]["name"] for crd in crds])
    # The dashboards' ConfigMaps live in Grafana's namespace, which a platform creates, not the app.
    grafana = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": grafana_namespace}}
    _apply(DynamicClient(api), [*objects.config_documents(settings), grafana])  # fresh discovery: the new CRDs


def _apply(dynamic: DynamicClient, docs: list[dict[str, Any]]) -> None:
    rejected = [r for r in kube.apply(dynamic, docs) if r.result == "rejected"]
    if rejected:
        raise ArgoCDError("; ".join(f"{r.kind}/{r.name}: {r.message}" for r in rejected))


def _env(state: ClusterState, settings: objects.Settings) -> dict[str, str]:
    """What the pods of an in-cluster install get from their manifests and mounts."""
    home = state.root / "argocd"
    return {
        "KUBECONFIG": str(state.kubeconfig),
        "ARGOCD_FAKE_IN_CLUSTER": "true",  # the in-cluster destination is KUBECONFIG's cluster
        "ARGOCD_GPG_ENABLED": "false",
        # Upstream's manifests feed argocd-cm's timeouts to both processes as these variables.
        "ARGOCD_RECONCILIATION_TIMEOUT": settings.reconciliation,
        "ARGOCD_RECONCILIATION_JITTER": settings.jitter,
        # Per-cluster paths instead of /tmp and /app/config, so two clusters on a host do not collide.
        "TMPDIR": str(home / "tmp"),
        "ARGOCD_ASK_PASS_SOCK": str(home / "ask-pass.sock"),
        "ARGOCD_GNUPGHOME": str(home / "gnupg"),
        "ARGOCD_SSH_DATA_PATH": str(home / "ssh"),
        "ARGOCD_TLS_DATA_PATH": str(home / "tls"),
        "HOME": str(home),
        # helm and hack/'s git-verify-wrapper.sh and gpg-wrapper.sh, which repo-server execs by name.
        "PATH": f"{TOOLS_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _redis_argv(redis: Path, state: ClusterState) -> list[str]:
    port = str(state.ports["argocd-redis"])
    home = str(state.root / "argocd")
    return [str(redis), "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", home]


def _repo_server_argv(argocd: Path, state: ClusterState) -> list[str]:
    return [
        str(argocd),
        "--address=127.0.0.1",
        f"--port={state.ports['argocd-repo-server']}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={state.ports['argocd-repo-server-metrics']}",
        f"--redis=127.0.0.1:{state.ports['argocd-redis']}",
        # Plain gRPC on loopback; --client-ca-path has a default (an in-pod path) that must be cleared.
        "--disable-tls",
        "--client-ca-path=",
        "--logformat=text",
    ]


def _controller_argv(argocd: Path, state: ClusterState, namespace: str) -> list[str]:
    return [
        str(argocd),
        f"--kubeconfig={state.kubeconfig}",
        f"--namespace={namespace}",
        f"--repo-server=127.0.0.1:{state.ports['argocd-repo-server']}",
        "--repo-server-plaintext",
        f"--redis=127.0.0.1:{state.ports['argocd-redis']}",
        f"--metrics-port={state.ports['argocd-controller-metrics']}",
        "--logformat=text",
    ]


def _spawn(state: ClusterState, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
    state.logs.mkdir(parents=True, exist_ok=True)
    binary = {"argocd-repo-server": "argocd-repo-server", "argocd-application-controller": name}.get(name)
    role = {"ARGOCD_BINARY_NAME": binary} if binary else {}
    with open(state.logs / f"{name}.log", "ab") as log:
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=state.root,
            env={**os.environ, **(env or {}), **role},
            start_new_session=True,  # its own process group: `stop` ends it and its children
        )
    state.record(name, proc.pid)


def _check_alive(state: ClusterState, name: str) -> None:
    if not state.alive(name):
        log = state.logs / f"{name}.log"
        tail = log.read_text(errors="replace").strip().splitlines()[-8:] if log.is_file() else []
        raise ArgoCDError(f"{name} exited during start; {log}:\n" + "\n".join(tail))


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port(state: ClusterState, name: str, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _listening(port):
        _check_alive(state, name)
        if time.monotonic() > deadline:
            raise ArgoCDError(f"{name} not listening on 127.0.0.1:{port} after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    _check_alive(state, name)


def _wait_healthz(state: ClusterState, port: int) -> None:
    """The controller's metrics server answers /healthz once its caches have synced."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        _check_alive(state, "argocd-application-controller")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise ArgoCDError(f"argocd-application-controller not healthy after {READY_TIMEOUT_S:.0f} s") from None
        time.sleep(0.3)
