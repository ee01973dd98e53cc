"""Argo CD (`kiosk cluster up --with argocd`): a real Argo CD syncing the local env from a local git server.

Four processes beside the control plane, started through the registry's `Context.launch` (so
`status` shows them and `down` stops them):
- `argocd-git`: `git daemon` on 127.0.0.1 serving a bare clone of this repository (`_gitserver.py`)
  at the local env's `gitops.repo_url`; a push to its branch is the merge of a pull request;
- `argocd-redis`: Debian's redis-server, Argo CD's cache;
- `argocd-repo-server`, `argocd-application-controller`: `.tools/bin/argocd` (built from the
  pinned argo-cd module by .ci/install.d/55-argocd.sh), the role picked by ARGOCD_BINARY_NAME.
No argocd-server (API and UI): the controller reads Applications from the cluster, and `kubectl`
is how one looks at them here. `start` then applies `argocd/apps/local/` (the AppProject first, in
sync-wave order), so the local tree syncs with no further command.
"""

from __future__ import annotations

import base64
import os
import socket
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient

from pipelines import project, render
from pipelines.cluster import bootstrap, kube
from pipelines.cluster.components import _argocd_objects as objects
from pipelines.cluster.components import _gitserver as gitserver
from pipelines.cluster.optional import Component, Context
from pipelines.cluster.state import ClusterState, free_port
from pipelines.config import KioskConfig, load_config
from pipelines.manifests.gitops import LOCAL_ENV
from pipelines.tools import find_tool

NAME = "argocd"
GIT, REDIS, REPO_SERVER, CONTROLLER = (
    "argocd-git",
    "argocd-redis",
    "argocd-repo-server",
    "argocd-application-controller",
)
TOOLS = ("argocd", "redis-server", "git", "helm", "git-verify-wrapper.sh", "gpg-wrapper.sh")
READY_TIMEOUT_S = 90.0
WAVE = "argocd.argoproj.io/sync-wave"


class ArgoCDError(RuntimeError):
    pass


def git_server(state: ClusterState) -> gitserver.GitServer:
    return gitserver.GitServer.from_url(load_config(LOCAL_ENV).gitops.repo_url, state.root / "argocd" / "git")


def local_app_documents() -> list[dict[str, Any]]:
    """`argocd/apps/local/` as `kiosk render` writes it, in sync-wave order (the AppProject first)."""
    files = {p: t for p, t in render.render_apps().items() if p.parent == render.LOCAL_APPS_DIR}
    docs = [doc for text in files.values() for doc in yaml.safe_load_all(text) if doc]
    return sorted(docs, key=lambda d: int(d["metadata"].get("annotations", {}).get(WAVE, "0")))


def apply_local_apps(dynamic: DynamicClient) -> None:
    _apply(dynamic, local_app_documents())


def _describe(state: ClusterState) -> list[str]:
    """Where it syncs from, and how to merge a change (`up` and `status` print it)."""
    cfg = load_config(LOCAL_ENV).gitops
    url = git_server(state).url
    return [
        f"argocd syncs argocd/apps/local/ from {url} (branch {cfg.revision}); to merge a change:",
        f"  uv run kiosk render && git commit -am '...' && git push {url} HEAD:{cfg.revision}",
        f"  kubectl get applications -n {cfg.argocd_namespace}",
    ]


def _start(ctx: Context) -> None:
    state, cfg = ctx.state, load_config(LOCAL_ENV)
    tools = {name: find_tool(name) or Path(name) for name in TOOLS}  # controlplane checked binaries
    server = git_server(state)
    home = state.root / "argocd"
    for sub in ("git", "tmp", "gnupg", "ssh", "tls"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    gitserver.seed(server, cfg.gitops.revision, project.root())
    if _listening(server.port):  # else the wait below would find the other server
        raise ArgoCDError(f"127.0.0.1:{server.port} (gitops.repo_url) is taken: is another cluster's Argo CD up?")
    base = {k: v for k, v in os.environ.items() if not k.startswith("ARGOCD_")}
    ctx.launch(GIT, gitserver.daemon_argv(tools["git"], server), base)
    _wait_port(ctx, server.port)
    for name in (REDIS, REPO_SERVER, "argocd-repo-server-metrics", "argocd-controller-metrics"):
        state.ports[name] = free_port()
    ctx.launch(REDIS, _redis_argv(tools["redis-server"], state), base)
    _wait_port(ctx, state.ports[REDIS])
    settings = objects.Settings(
        namespace=cfg.gitops.argocd_namespace, repo_url=server.url, secret_key=_secret_key(ctx.api, cfg)
    )
    _install(ctx.api, settings, cfg.observability.grafana_namespace)
    env = base | _env(state, settings)
    ctx.launch(REPO_SERVER, _repo_server_argv(tools["argocd"], state), env | {"ARGOCD_BINARY_NAME": REPO_SERVER})
    _wait_port(ctx, state.ports[REPO_SERVER])
    argv = _controller_argv(tools["argocd"], state, settings.namespace)
    ctx.launch(CONTROLLER, argv, env | {"ARGOCD_BINARY_NAME": CONTROLLER})
    _wait_healthz(ctx, state.ports["argocd-controller-metrics"])
    apply_local_apps(DynamicClient(ctx.api))


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
    tools = project.tools_bin()
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
        "PATH": os.pathsep.join([*([str(tools)] if tools else []), os.environ.get("PATH", "")]),
    }


def _redis_argv(redis: Path, state: ClusterState) -> list[str]:
    port = str(state.ports[REDIS])
    home = str(state.root / "argocd")
    return [str(redis), "--bind", "127.0.0.1", "--port", port, "--save", "", "--appendonly", "no", "--dir", home]


def _repo_server_argv(argocd: Path, state: ClusterState) -> list[str]:
    return [
        str(argocd),
        "--address=127.0.0.1",
        f"--port={state.ports[REPO_SERVER]}",
        "--metrics-address=127.0.0.1",
        f"--metrics-port={state.ports['argocd-repo-server-metrics']}",
        f"--redis=127.0.0.1:{state.ports[REDIS]}",
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
        f"--repo-server=127.0.0.1:{state.ports[REPO_SERVER]}",
        "--repo-server-plaintext",
        f"--redis=127.0.0.1:{state.ports[REDIS]}",
        f"--metrics-port={state.ports['argocd-controller-metrics']}",
        "--logformat=text",
    ]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait_port(ctx: Context, port: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not _listening(port):
        ctx.check_alive()
        if time.monotonic() > deadline:
            raise ArgoCDError(f"nothing listening on 127.0.0.1:{port} after {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)
    ctx.check_alive()


def _wait_healthz(ctx: Context, port: int) -> None:
    """The controller's metrics server answers /healthz once its caches have synced."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        ctx.check_alive()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as answer:
                if answer.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise ArgoCDError(f"{CONTROLLER} not healthy after {READY_TIMEOUT_S:.0f} s") from None
        time.sleep(0.3)


COMPONENT = Component(
    name=NAME,
    summary="Argo CD (repo-server, application-controller, redis) syncing argocd/apps/local/ from a git server",
    processes=(GIT, REDIS, REPO_SERVER, CONTROLLER),
    binaries=TOOLS,
    install=".ci/install.d/55-argocd.sh",  # it names 40-debian-packages.sh when redis-server is missing
    start=_start,
    describe=_describe,
)
