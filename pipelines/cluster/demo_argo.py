"""`kiosk demo --engine argo`: the demo's templates on Argo's real controller (the local cluster),
its pods on the agent (`--node agent`, the `local` env) or on the real node (`--node real`, the
`local` env configured like a cloud one: `pipelines.cluster.node_env`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.dynamic import DynamicClient

from pipelines.cluster import controlplane, kube, node_env, workflows
from pipelines.cluster.cli_apply import ensure_namespace, env_documents
from pipelines.cluster.components import real_node as real_node_component
from pipelines.config import load_config

TIMEOUT_S = 900.0
#: A fresh namespace gets its `default` ServiceAccount from kube-controller-manager within this.
SERVICE_ACCOUNT_TIMEOUT_S = 60


class ArgoDemo:
    """Starts the local cluster (a no-op when up; with the real node for `real_node`), applies the
    env the node runs, then runs templates.
    """

    def __init__(self, workdir: Path, *, real_node: bool = False) -> None:
        state = controlplane.up(workdir, components=[real_node_component.NAME] if real_node else [])
        self.api = kube.api_client(str(state.kubeconfig))
        self.placement: dict[str, Any] = {}
        if real_node:
            env = node_env.apply(self.api, state)
            self.namespace, self.store = env.namespace, env.storage_uri
            self.placement = real_node_component.PLACEMENT
            # kubelet's layout: <namespace>_<pod>_<uid>/<container>/<restart>.log
            self._logs = f"{real_node_component.layout(state).pod_logs}/{self.namespace}_"
        else:
            self.namespace, docs = env_documents("local")
            dynamic = DynamicClient(self.api)
            ensure_namespace(dynamic, self.namespace, dry_run=False)
            kube.apply_all(dynamic, docs, namespace=self.namespace)
            self.store = load_config("local").storage.resolved_uri
            self._logs = f"{state.root / 'pods' / self.namespace}/"
        _wait_default_service_account(k8s.CoreV1Api(self.api), self.namespace)

    def logs_of(self, pod: str) -> str:
        """Where the logs of a pod (or, with a workflow's name, its pods) lie."""
        return f"{self._logs}{pod}*"

    def run(self, template: str, parameters: dict[str, str]) -> dict[str, Any]:
        manifest = workflows.from_template(template, self.namespace, parameters)
        manifest["spec"] |= self.placement
        created = workflows.create(self.api, manifest)
        return workflows.wait(self.api, self.namespace, created["metadata"]["name"], TIMEOUT_S)


def _wait_default_service_account(core: k8s.CoreV1Api, namespace: str) -> None:
    """Pods of a namespace without it are refused (`serviceaccounts "default" not found`)."""
    selector = "metadata.name=default"
    if core.list_namespaced_service_account(namespace, field_selector=selector).items:
        return
    watch = k8s_watch.Watch()
    for _ in watch.stream(
        core.list_namespaced_service_account,
        namespace,
        field_selector=selector,
        timeout_seconds=SERVICE_ACCOUNT_TIMEOUT_S,
    ):
        watch.stop()
        return
    raise RuntimeError(f"namespace {namespace}: no default ServiceAccount after {SERVICE_ACCOUNT_TIMEOUT_S} s")
