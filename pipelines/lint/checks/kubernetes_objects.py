"""Every non-Argo-Workflows object: built-in kinds with kubernetes-validate (strict); ArgoCD's
AppProject/Application, Karpenter's NodePool/EC2NodeClass and the Prometheus operator's
PrometheusRule against their pinned CRDs (`pipelines/lint/crds.py`); the serving chart's `helm template`.

What is checked: the objects next to the rendered workflows (`argocd/workflows/<env>/`, e.g.
ServiceAccount, Role, RoleBinding), the dashboards' ConfigMaps and the alert rules
(`argocd/observability/<env>/`), the GPU capacity objects (`argocd/cluster/<env>/`), everything in
`argocd/apps/`, and the chart's output. A kind with no known schema is a finding: a lint that
skipped it would pass a typo in `apiVersion`.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import yaml
from kubernetes_validate import utils as kv_utils

from pipelines.lint import crds
from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.lint.manifests import Document, app_files, read_documents
from pipelines.tools import find_tool

CHART = Path("argocd") / "charts" / "serving"


def kubernetes_version() -> str:
    """The newest schema set kubernetes-validate ships (the lock pins it, so this is stable)."""
    return kv_utils.latest_version()


def object_errors(body: dict) -> list[str]:
    """Schema errors of one non-Argo-Workflows object; a kind without a schema is an error too."""
    try:
        crd_errors = crds.validate(body)
    except crds.CrdError as exc:
        return [f"cannot read the pinned CRDs: {exc}"]
    if crd_errors is not None:
        return crd_errors
    try:
        kubernetes_validate.validate(body, kubernetes_version(), strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(map(str, exc.path)) or "<root>"
        return [f"{path}: {exc.message}"]
    except kv_utils.SchemaNotFoundError as exc:
        return [f"no schema for {exc.api_version} {exc.kind} (kubernetes {exc.version}, pinned CRDs)"]
    except KeyError as exc:
        return [f"missing {exc.args[0]}"]
    return []


def check_documents(docs: list[Document], repo: Path, result: CheckResult) -> None:
    for doc in docs:
        result.checked += 1
        for message in object_errors(doc.body):
            result.findings.append(Finding(target=doc.target(repo), message=message))


def helm_template(ctx: LintContext, result: CheckResult) -> list[Document]:
    chart = ctx.repo / CHART
    if not (chart / "Chart.yaml").is_file():
        return []
    helm = find_tool("helm")
    if helm is None:
        result.missing_tool = "helm"
        return []
    proc = subprocess.run([str(helm), "template", "serving", str(chart)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        result.findings.append(Finding(target=str(CHART), message=f"helm template: {proc.stderr.strip()}"))
        return []
    try:
        bodies = [b for b in yaml.safe_load_all(proc.stdout) if isinstance(b, dict)]
    except yaml.YAMLError as exc:
        result.findings.append(Finding(target=str(CHART), message=f"helm template output: {exc}"))
        return []
    return [Document(path=chart / "(helm template)", index=i, body=b) for i, b in enumerate(bodies)]


def run(ctx: LintContext) -> CheckResult:
    result = CheckResult()
    files = ctx.workflow_files() + ctx.operations_files() + app_files(ctx)
    docs = [d for d in read_documents(files, result, ctx.repo) if not d.is_argo_workflow_kind]
    docs += helm_template(ctx, result)
    check_documents(docs, ctx.repo, result)
    return result


CHECK = Check(
    name="kubernetes-objects",
    description="non-Argo objects and helm template output: kubernetes-validate --strict, pinned CRD schemas",
    run=run,
)
