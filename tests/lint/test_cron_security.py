"""The `argo-security` check: checkov's CKV_ARGO_1/2 on every workflow spec, CronWorkflows included."""

from __future__ import annotations

import pytest

from pipelines.lint.base import LintContext
from pipelines.lint.checks import cron_security
from tests.lint.lint_helpers import caller_template, cron_workflow, good_repo, workflow_template, write_docs


def run_on(tmp_path, *docs):
    repo = good_repo(tmp_path)
    write_docs(repo / "argocd" / "workflows" / "dev" / "extra.yaml", *docs)
    return cron_security.CHECK.run(LintContext(repo=repo, envs=("dev",)))


def test_good_repo_passes(tmp_path):
    result = cron_security.CHECK.run(LintContext(repo=good_repo(tmp_path), envs=("dev",)))
    assert (result.findings, result.checked) == ([], 3)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        (lambda s: s.pop("serviceAccountName"), "CKV_ARGO_1"),
        (lambda s: s.update(serviceAccountName="default"), "CKV_ARGO_1"),
        (lambda s: s.pop("securityContext"), "CKV_ARGO_2"),
        (lambda s: s["securityContext"].update(runAsNonRoot="true"), "CKV_ARGO_2"),
        (lambda s: s["securityContext"].update(runAsNonRoot=False), "CKV_ARGO_2"),
    ],
)
def test_cron_workflow_spec_is_checked(tmp_path, change, rule):
    cron = cron_workflow(name="bad-cron")
    change(cron["spec"]["workflowSpec"])
    result = run_on(tmp_path, cron)
    assert len(result.findings) == 1
    finding = result.findings[0]
    assert finding.target.endswith("(CronWorkflow/bad-cron)")
    assert finding.message.startswith(f"spec.workflowSpec: {rule}")


def test_cron_spec_outside_workflow_spec_does_not_count(tmp_path):
    """Settings on CronWorkflow.spec itself do not reach the pods, so they do not pass the rule."""
    cron = cron_workflow(name="misplaced")
    cron["spec"].update(cron["spec"].pop("workflowSpec"))
    cron["spec"]["workflowSpec"] = {"workflowTemplateRef": {"name": "kiosk-batch"}}
    assert {f.message.split(":")[1].strip() for f in run_on(tmp_path, cron).findings} == {"CKV_ARGO_1", "CKV_ARGO_2"}


def test_workflow_templates_are_checked_too(tmp_path):
    template = caller_template(name="insecure")
    del template["spec"]["serviceAccountName"], template["spec"]["securityContext"]
    result = run_on(tmp_path, template)
    assert [f.message for f in result.findings] == [
        "spec: CKV_ARGO_1: serviceAccountName must be set and not 'default'",
        "spec: CKV_ARGO_2: securityContext.runAsNonRoot must be true",
    ]


def test_non_argo_objects_are_ignored(tmp_path):
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {}}
    result = run_on(tmp_path, config_map, workflow_template("second"))
    assert (result.findings, result.checked) == ([], 4)
