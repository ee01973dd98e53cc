"""checkov's CKV_ARGO_1/CKV_ARGO_2, applied where checkov does not look.

checkov (3.3.x) runs these two rules on `spec` of Workflows and WorkflowTemplates only, so a
CronWorkflow (`spec.workflowSpec`) escapes both. Here the same rules, with checkov's exact
semantics, run on the workflow spec of every Argo object (Workflow, WorkflowTemplate,
ClusterWorkflowTemplate, CronWorkflow), so all kinds meet one bar:
  CKV_ARGO_1: `serviceAccountName` is set and is not `default`;
  CKV_ARGO_2: `securityContext.runAsNonRoot` is `true`.
"""

from __future__ import annotations

from typing import Any

from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.lint.manifests import Document, read_documents


def workflow_spec(doc: Document) -> tuple[str, dict[str, Any]]:
    """(path shown in findings, the spec the pods are made from)."""
    spec = doc.body.get("spec") or {}
    if doc.kind == "CronWorkflow":
        return "spec.workflowSpec", (spec.get("workflowSpec") or {}) if isinstance(spec, dict) else {}
    return "spec", spec if isinstance(spec, dict) else {}


def spec_violations(spec: dict[str, Any]) -> list[str]:
    """Messages for the CKV_ARGO_1/2 rules `spec` breaks (empty when it passes both)."""
    problems = []
    # Mirrors checkov's DefaultServiceAccount.scan_conf: absent counts as default.
    if "serviceAccountName" not in spec or spec["serviceAccountName"] == "default":
        problems.append("CKV_ARGO_1: serviceAccountName must be set and not 'default'")
    security_context = spec.get("securityContext")
    if not (isinstance(security_context, dict) and security_context.get("runAsNonRoot") is True):
        problems.append("CKV_ARGO_2: securityContext.runAsNonRoot must be true")
    return problems


def run(ctx: LintContext) -> CheckResult:
    result = CheckResult()
    for doc in read_documents(ctx.workflow_files(), result, ctx.repo):
        if not doc.is_argo_workflow_kind:
            continue
        result.checked += 1
        where, spec = workflow_spec(doc)
        for problem in spec_violations(spec):
            result.findings.append(Finding(target=doc.target(ctx.repo), message=f"{where}: {problem}"))
    return result


CHECK = Check(
    name="argo-security",
    description="CKV_ARGO_1/2 on every Argo workflow spec, CronWorkflow.spec.workflowSpec included",
    run=run,
)
