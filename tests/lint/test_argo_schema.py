"""The `argo-schema` check: Argo objects against the pinned module's schema.json, closed to unknown fields."""

from __future__ import annotations

import pytest
import yaml

from pipelines import argo_module
from pipelines.lint.base import LintContext
from pipelines.lint.checks import argo_schema
from pipelines.lint.manifests import ARGO_KINDS
from tests.fixtures.tools import require_tool
from tests.lint.lint_helpers import cron_workflow, good_repo, workflow_template, write_docs


@pytest.fixture(autouse=True)
def _go():
    require_tool("go")


def test_good_objects_pass():
    assert argo_schema.schema_errors(workflow_template()) == []
    assert argo_schema.schema_errors(cron_workflow()) == []


def test_unknown_field_fails():
    body = workflow_template()
    body["spec"]["templates"][0]["container"]["imagePullPolicyy"] = "Always"
    errors = argo_schema.schema_errors(body)
    assert len(errors) == 1 and "imagePullPolicyy" in errors[0]
    assert errors[0].startswith("spec.templates.0.container:")


def test_wrong_type_fails():
    body = cron_workflow()
    body["spec"]["schedules"] = "0 2 * * *"
    assert any("spec.schedules" in e for e in argo_schema.schema_errors(body))


def test_int_or_string_accepts_both():
    for limit in (3, "3"):
        body = workflow_template()
        body["spec"]["templates"][0]["retryStrategy"] = {"limit": limit}
        assert argo_schema.schema_errors(body) == []
    body["spec"]["templates"][0]["retryStrategy"] = {"limit": [3]}
    assert argo_schema.schema_errors(body)


def test_every_argo_kind_has_a_closed_definition():
    for kind in ARGO_KINDS:
        validator = argo_schema.validator_for(kind)
        assert validator is not None, kind
        body = {
            "apiVersion": "argoproj.io/v1alpha1",
            "kind": kind,
            "metadata": {"name": "x"},
            "spec": {"entrypointt": 3},
        }
        messages = [e.message for e in validator.iter_errors(body)]
        assert any("'entrypointt' was unexpected" in m for m in messages), (kind, messages)  # its own spec, closed


def test_upstream_examples_pass_the_closed_schema():
    """Closing the schema must not reject anything Argo's own examples use."""
    examples = sorted((argo_module.module_dir() / "examples").rglob("*.yaml"))
    checked = 0
    for path in examples:
        for body in yaml.safe_load_all(path.read_text()):
            if isinstance(body, dict) and body.get("kind") in ARGO_KINDS:
                checked += 1
                assert argo_schema.schema_errors(body) == [], path
    assert checked > 50


def test_check_on_a_repo(tmp_path):
    repo = good_repo(tmp_path)
    ctx = LintContext(repo=repo, envs=("dev",))
    result = argo_schema.CHECK.run(ctx)
    assert (result.findings, result.checked) == ([], 3)

    bad = workflow_template("bad")
    bad["spec"]["entrypoin"] = "main"
    write_docs(repo / "argocd" / "workflows" / "dev" / "bad.yaml", bad)
    result = argo_schema.CHECK.run(ctx)
    assert [f.target for f in result.findings] == ["argocd/workflows/dev/bad.yaml#1 (WorkflowTemplate/bad)"]
    assert "entrypoin" in result.findings[0].message
