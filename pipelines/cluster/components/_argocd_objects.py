"""The objects a local Argo CD needs before its processes start, from the pinned argo-cd module.

`.ci/install.d/55-argocd.sh` copies the module's CRDs and its `argocd-cm`, `argocd-rbac-cm` and
`argocd-secret` into `.tools/share/argocd/` (no download). Added here: what an in-cluster install
gets from its other manifests or from argocd-server, which does not run locally.
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import project
from pipelines.cluster import bootstrap
from pipelines.lint import crds

CRD_FILES = ("application-crd.yaml", "appproject-crd.yaml")
CONFIG_FILES = ("argocd-cm.yaml", "argocd-rbac-cm.yaml", "argocd-secret.yaml")
REPOSITORY_SECRET = "repo-kiosk-local"


@dataclass(frozen=True, kw_only=True)
class Settings:
    """What differs from upstream's defaults on the local cluster."""

    namespace: str
    repo_url: str
    #: argocd-cm `timeout.reconciliation` (upstream: 120s, jitter 60s): how soon a push is noticed
    #: without a refresh annotation or a webhook.
    reconciliation: str = "10s"
    jitter: str = "0s"
    #: argocd-secret `server.secretkey`, which the controller will not start without (argocd-server
    #: makes it in a real install); kept across restarts by the caller.
    secret_key: str


def share_dir() -> Path:
    """`.tools/share/argocd/` of the checkout."""
    share = project.root() / ".tools" / "share" / "argocd"
    missing = [name for name in (*CRD_FILES, *CONFIG_FILES) if not (share / name).is_file()]
    if missing:
        raise FileNotFoundError(f"{share}: {', '.join(missing)} missing; run `bash .ci/install.d/55-argocd.sh`")
    return share


def crd_documents() -> list[dict[str, Any]]:
    """Argo CD's CRDs, and prometheus-operator's PrometheusRule that the observability app syncs
    (a platform's cluster has it; ours has no operator, only the kind).
    """
    prometheus = crds.module_dir(crds.PROMETHEUS_OPERATOR)
    return bootstrap.load_all(
        [*(share_dir() / name for name in CRD_FILES), *(prometheus / f for f in crds.PROMETHEUS_OPERATOR.files)]
    )


def config_documents(settings: Settings) -> list[dict[str, Any]]:
    """Namespace, the three config objects, the `default` AppProject and the repository Secret."""
    docs = bootstrap.load_all([share_dir() / name for name in CONFIG_FILES])
    for doc in docs:
        doc["metadata"]["namespace"] = settings.namespace
        if doc["metadata"]["name"] == "argocd-cm":
            doc["data"] = {
                **(doc.get("data") or {}),
                "timeout.reconciliation": settings.reconciliation,
                "timeout.reconciliation.jitter": settings.jitter,
            }
        if doc["metadata"]["name"] == "argocd-secret":
            doc["data"] = {"server.secretkey": base64.b64encode(settings.secret_key.encode()).decode()}
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": settings.namespace}}
    return [namespace, *docs, _default_project(settings.namespace), _repository(settings)]


def new_secret_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


def _default_project(namespace: str) -> dict[str, Any]:
    """The controller needs an AppProject `default` (argocd-server creates one, wide open). Ours
    permits nothing: every Application here must belong to the rendered, fenced project.
    """
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AppProject",
        "metadata": {"name": "default", "namespace": namespace},
        "spec": {"description": "Unused: permits no repository and no destination.", "sourceRepos": []},
    }


def _repository(settings: Settings) -> dict[str, Any]:
    """What `argocd repo add` writes: a Secret labelled as a repository."""
    data = {"type": "git", "name": "kiosk-pipelines", "url": settings.repo_url}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": REPOSITORY_SECRET,
            "namespace": settings.namespace,
            "labels": {"argocd.argoproj.io/secret-type": "repository"},
        },
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
