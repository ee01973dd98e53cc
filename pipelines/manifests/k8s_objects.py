"""The plain Kubernetes objects the workflows need: ServiceAccount, executor RBAC, artifact repository.

Built with the kubernetes client's typed models so a misspelt field fails here, not in the cluster.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

import yaml
from kubernetes import client

from pipelines.config import KioskConfig
from pipelines.templates import _common

# ArgoCD applies these before the templates that name them.
SYNC_WAVE = "-1"
_API = client.ApiClient()


def executor_role_name(cfg: KioskConfig) -> str:
    return f"{cfg.service_account}-executor"


def _meta(
    cfg: KioskConfig, env: str, name: str, component: str = "workflow-rbac", extra: dict[str, str] | None = None
) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(
        name=name,
        namespace=cfg.namespace,
        labels=_common.labels(cfg, env, component),
        annotations={"argocd.argoproj.io/sync-wave": SYNC_WAVE, **(extra or {})},
    )


def service_account(cfg: KioskConfig, env: str) -> client.V1ServiceAccount:
    # The token stays mounted: Argo's executor uses it to report outputs (workflowtaskresults).
    return client.V1ServiceAccount(
        api_version="v1", kind="ServiceAccount", metadata=_meta(cfg, env, cfg.service_account)
    )


def executor_role(cfg: KioskConfig, env: str) -> client.V1Role:
    # The minimum Argo (v3.4+) executors need; steps reach storage with their own credentials.
    return client.V1Role(
        api_version="rbac.authorization.k8s.io/v1",
        kind="Role",
        metadata=_meta(cfg, env, executor_role_name(cfg)),
        rules=[
            client.V1PolicyRule(
                api_groups=["argoproj.io"], resources=["workflowtaskresults"], verbs=["create", "patch"]
            ),
            # Read-only, this namespace: the benchmark step bills each run by its lane pods'
            # start/finish times in its own Workflow's status.
            client.V1PolicyRule(api_groups=["argoproj.io"], resources=["workflows"], verbs=["get"]),
        ],
    )


def executor_role_binding(cfg: KioskConfig, env: str) -> client.V1RoleBinding:
    return client.V1RoleBinding(
        api_version="rbac.authorization.k8s.io/v1",
        kind="RoleBinding",
        metadata=_meta(cfg, env, executor_role_name(cfg)),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name=executor_role_name(cfg)),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name=cfg.service_account, namespace=cfg.namespace)],
    )


def artifact_repository(cfg: KioskConfig, env: str) -> client.V1ConfigMap | None:
    """Where Argo archives pod logs (pods are garbage-collected); only for S3 storage."""
    if not _common.uses_s3(cfg):
        return None
    store = urlparse(cfg.storage.uri)
    prefix = store.path.strip("/")
    s3: dict[str, Any] = {
        "bucket": store.netloc,
        "region": cfg.storage.region,
        "keyFormat": "/".join(
            p for p in (prefix, cfg.inference.runs_prefix, "{{workflow.name}}", "logs", "{{pod.name}}") if p
        ),
    }
    if cfg.storage.s3_endpoint:
        endpoint = urlparse(cfg.storage.s3_endpoint)
        s3["endpoint"] = endpoint.netloc or endpoint.path
        s3["insecure"] = endpoint.scheme == "http"
    else:
        s3["endpoint"] = "s3.amazonaws.com"
    secret = cfg.storage.credentials_secret
    if secret:  # a reference to the Secret, never its content
        s3["accessKeySecret"] = {"name": secret, "key": "AWS_ACCESS_KEY_ID"}
        s3["secretKeySecret"] = {"name": secret, "key": "AWS_SECRET_ACCESS_KEY"}
    else:
        s3["useSDKCreds"] = True
    key = cfg.artifact_repository.key
    return client.V1ConfigMap(
        api_version="v1",
        kind="ConfigMap",
        metadata=_meta(
            cfg,
            env,
            cfg.artifact_repository.config_map,
            "artifact-repository",
            {"workflows.argoproj.io/default-artifact-repository": key},
        ),
        data={key: yaml.safe_dump({"archiveLogs": True, "s3": s3}, sort_keys=False)},
    )


def build_all(cfg: KioskConfig, env: str) -> list[dict[str, Any]]:
    objects = [
        service_account(cfg, env),
        executor_role(cfg, env),
        executor_role_binding(cfg, env),
        artifact_repository(cfg, env),
    ]
    return [_API.sanitize_for_serialization(o) for o in objects if o is not None]
