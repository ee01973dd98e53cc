"""`kiosk demo --engine argo`: the demo's templates on Argo's real controller (the local cluster)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kubernetes.dynamic import DynamicClient

from pipelines.cluster import controlplane, kube, workflows
from pipelines.cluster.cli_apply import ensure_namespace, env_documents

TIMEOUT_S = 900.0


class ArgoDemo:
    """Starts the local cluster (a no-op when up), applies the `local` env, then runs templates."""

    def __init__(self, workdir: Path) -> None:
        state = controlplane.up(workdir)
        self.api = kube.api_client(str(state.kubeconfig))
        self.namespace, docs = env_documents("local")
        dynamic = DynamicClient(self.api)
        ensure_namespace(dynamic, self.namespace, dry_run=False)
        rejected = [r for r in kube.apply(dynamic, docs, namespace=self.namespace) if r.result == "rejected"]
        if rejected:
            raise RuntimeError("; ".join(f"{r.kind}/{r.name}: {r.message}" for r in rejected))
        self.logs = state.root / "pods" / self.namespace

    def run(self, template: str, parameters: dict[str, str]) -> dict[str, Any]:
        created = workflows.create(self.api, workflows.from_template(template, self.namespace, parameters))
        return workflows.wait(self.api, self.namespace, created["metadata"]["name"], TIMEOUT_S)
