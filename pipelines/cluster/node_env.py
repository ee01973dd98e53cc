"""The `local` env as the real node runs it (`kiosk demo --engine argo --node real`): configured like a
cloud env, the store and the artifact repository in S3 behind the `minio` Service, by that name, with
credentials from a Secret.

The `local` env itself keeps its file store: `kiosk run` and the agent run steps as host processes,
which resolve no cluster names and share the repository's directory. The real node's containers share
nothing with the host, so its env is the `local` overlay with three changes: its own namespace (the
`local` env's WorkflowTemplates stay as they are), `storage` in the emulator's bucket by Service
name, and the credentials Secret. Its config is written under the cluster's directory at apply time,
since the bucket and keys are the cluster's (`pipelines.cluster.objectstore`), never rendered into
argocd/. CronWorkflows are left out: a CronWorkflow's spec takes no placement here, so its runs
would land on the agent, which cannot reach `minio`.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from pipelines.cluster import kube, objectstore
from pipelines.cluster.state import ClusterState
from pipelines.config.loader import CONFIG_DIR
from pipelines.render import render_env

ENV = "real-node"
NAMESPACE = "kiosk-real-node"
#: The Secret the steps read their S3 keys from (`storage.credentials_secret`).
SECRET = "kiosk-s3"
ENDPOINT = f"http://{objectstore.SERVICE}:{objectstore.SERVICE_PORT}"  # as Argo's quick start names MinIO


@dataclass(frozen=True, kw_only=True)
class NodeEnv:
    """Where the env was applied and its store, as pods and the host reach it."""

    namespace: str
    store: objectstore.ObjectStore
    prefix: str  # the env's storage root in the bucket

    @property
    def storage_uri(self) -> str:
        return f"s3://{self.store.bucket}/{self.prefix}"


def config_dir(root: Path, env: NodeEnv) -> Path:
    """base.yaml and the `local` overlay, with the env's namespace and its S3 store by Service name."""
    config = root / "config"
    if config.exists():
        shutil.rmtree(config)
    config.mkdir(parents=True)
    shutil.copy(CONFIG_DIR / "base.yaml", config / "base.yaml")
    overlay = yaml.safe_load((CONFIG_DIR / f"{objectstore.ENV}.yaml").read_text())
    overlay["namespace"] = env.namespace
    overlay["storage"] = {"uri": env.storage_uri, "s3_endpoint": ENDPOINT, "credentials_secret": SECRET}
    (config / f"{ENV}.yaml").write_text(yaml.safe_dump(overlay))
    return config


def documents(root: Path, env: NodeEnv) -> list[dict[str, Any]]:
    """The namespace, the credentials Secret, the `minio` Service and the rendered env, without its
    CronWorkflows.
    """
    rendered = [doc for text in render_env(ENV, config_dir(root, env)).values() for doc in yaml.safe_load_all(text)]
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": env.namespace},
        "stringData": {"AWS_ACCESS_KEY_ID": env.store.access_key, "AWS_SECRET_ACCESS_KEY": env.store.secret_key},
    }
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": env.namespace}}
    minio = objectstore.host_service(env.store, env.namespace).documents()
    return [namespace, secret, *minio, *(d for d in rendered if d and d["kind"] != "CronWorkflow")]


def apply(api: k8s.ApiClient, state: ClusterState, *, namespace: str = NAMESPACE) -> NodeEnv:
    """Render the env for this cluster's object store and apply it; refused objects raise."""
    store = objectstore.load(state)
    if store is None:
        raise RuntimeError(f"no object store recorded in {state.root}: run `uv run kiosk cluster up`")
    env = NodeEnv(namespace=namespace, store=store, prefix=namespace)
    docs = documents(state.root / "envs" / namespace, env)
    kube.apply_all(DynamicClient(api), docs, namespace=namespace)
    return env
