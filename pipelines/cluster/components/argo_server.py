"""argo-server (`argo server`, the API behind the Argo UI and Hera's `WorkflowsService`).

- Auth: `--auth-mode=client`, upstream's default: every request carries a Kubernetes bearer token
  and argo-server acts with it, so RBAC decides. `kiosk cluster env` hands out the token of the
  ServiceAccount `argo/kiosk-user`, whose Role allows Argo's objects, pods and pod logs in the local
  env's namespace only. argo-server itself runs as its own ServiceAccount with upstream's ClusterRole.
- TLS: `--secure`, upstream's default, with the self-signed certificate argo-server generates at
  start; it listens on 127.0.0.1 only (our build's edit), so clients skip verification
  (`ARGO_INSECURE_SKIP_VERIFY=true`), as upstream's quick start does.
"""

from __future__ import annotations

import os
import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from kubernetes.dynamic import DynamicClient

from pipelines.cluster import bootstrap, kube
from pipelines.cluster.optional import Component, Context
from pipelines.cluster.state import ClusterState, free_port
from pipelines.config import load_config
from pipelines.tools import find_tool

NAME = "argo-server"
NAMESPACE = "argo"  # the controller's, where argo-server reads workflow-controller-configmap
USER = "kiosk-user"
READY_TIMEOUT_S = 60.0


def user_namespace() -> str:
    return load_config("local").namespace


def token_path(state: ClusterState) -> Path:
    return state.root / "pki" / f"{USER}.token"


def url(state: ClusterState) -> str:
    return f"https://127.0.0.1:{state.ports[NAME]}"


def _documents() -> list[dict[str, Any]]:
    manifests = bootstrap.argo_manifests()
    rbac = sorted((manifests / "cluster-install-no-crds" / "argo-server-rbac").glob("argo-server-*.yaml"))
    docs = bootstrap.load_all([manifests / "base" / "argo-server" / "argo-server-sa.yaml", *rbac])
    for doc in docs:
        if doc["kind"] == "ServiceAccount":
            doc["metadata"]["namespace"] = NAMESPACE
        for subject in doc.get("subjects") or []:
            subject.setdefault("namespace", NAMESPACE)  # kustomize fills it in upstream
    return [*docs, *_user_documents(user_namespace())]


def _user_documents(namespace: str) -> list[dict[str, Any]]:
    rbac = "rbac.authorization.k8s.io"
    argo = ["workflows", "workflowtemplates", "cronworkflows", "workfloweventbindings"]
    rules = [
        {"apiGroups": ["argoproj.io"], "resources": argo, "verbs": ["*"]},
        {"apiGroups": [""], "resources": ["pods", "events"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
    ]
    meta = {"name": USER, "namespace": namespace}
    return [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": USER, "namespace": NAMESPACE}},
        {"apiVersion": f"{rbac}/v1", "kind": "Role", "metadata": meta, "rules": rules},
        {
            "apiVersion": f"{rbac}/v1",
            "kind": "RoleBinding",
            "metadata": meta,
            "roleRef": {"apiGroup": rbac, "kind": "Role", "name": USER},
            "subjects": [{"kind": "ServiceAccount", "name": USER, "namespace": NAMESPACE}],
        },
    ]


def _write_kubeconfig(state: ClusterState, token: str) -> Path:
    """The admin kubeconfig's cluster, with argo-server's own ServiceAccount token."""
    config = yaml.safe_load(state.kubeconfig.read_text())
    config["users"] = [{"name": NAME, "user": {"token": token}}]
    config["contexts"][0]["context"]["user"] = NAME
    path = state.root / f"{NAME}.kubeconfig"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path


def _argv(state: ClusterState, argo: Path, kubeconfig: Path) -> list[str]:
    return [
        str(argo),
        "server",
        f"--kubeconfig={kubeconfig}",
        f"--namespace={NAMESPACE}",
        f"--port={state.ports[NAME]}",
        "--auth-mode=client",
        "--secure=true",
        "--configmap=workflow-controller-configmap",
        "--loglevel=info",
    ]


def _start(ctx: Context) -> None:
    state = ctx.state
    kube.apply_all(DynamicClient(ctx.api), _documents())
    server_token = bootstrap.service_account_token(ctx.api, NAMESPACE, NAME)
    user_token = bootstrap.service_account_token(ctx.api, NAMESPACE, USER)
    token_path(state).write_text(user_token)
    token_path(state).chmod(0o600)
    state.ports[NAME] = free_port()
    argo = find_tool("argo")
    assert argo is not None  # controlplane checks COMPONENT.binaries first
    kubeconfig = _write_kubeconfig(state, server_token)
    # ARGO_* variables set argo server's flags (viper), and an `eval "$(kiosk cluster env)"` shell has
    # them. In client mode argo-server builds each request's client from $KUBECONFIG, not --kubeconfig
    # (util/kubeconfig.DefaultRestConfig): both name its own.
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARGO_")} | {"KUBECONFIG": str(kubeconfig)}
    ctx.launch(NAME, _argv(state, argo, kubeconfig), env)
    _wait_ready(ctx, user_token)


def _wait_ready(ctx: Context, token: str) -> None:
    """Until an authenticated /api/v1/version answers 200: TLS, auth and the kube client all work."""
    request = urllib.request.Request(f"{url(ctx.state)}/api/v1/version", headers={"Authorization": f"Bearer {token}"})
    context = ssl._create_unverified_context()  # argo-server's self-signed certificate, on loopback
    deadline = time.monotonic() + READY_TIMEOUT_S
    while True:
        ctx.check_alive()
        try:
            with urllib.request.urlopen(request, context=context, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.HTTPError):  # not yet listening, or not yet serving
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"argo-server did not answer within {READY_TIMEOUT_S:.0f} s")
        time.sleep(0.2)


def _env(state: ClusterState) -> dict[str, str]:
    return {
        "ARGO_SERVER": f"127.0.0.1:{state.ports[NAME]}",
        "ARGO_TOKEN": f"Bearer {token_path(state).read_text().strip()}",
        "ARGO_SECURE": "true",
        "ARGO_INSECURE_SKIP_VERIFY": "true",
    }


def _describe(state: ClusterState) -> list[str]:
    return [f"argo-server {url(state)} (auth-mode client, self-signed TLS; `kiosk cluster env` exports the token)"]


COMPONENT = Component(
    name=NAME,
    summary="argo-server on 127.0.0.1 (API for the argo CLI, Hera and the UI)",
    processes=(NAME,),
    binaries=("argo",),
    install=".ci/install.d/50-control-plane.sh",
    start=_start,
    env=_env,
    describe=_describe,
)
