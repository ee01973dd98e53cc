"""The `kubernetes-objects` check: built-in kinds via kubernetes-validate, ArgoCD kinds via pinned CRDs."""

from __future__ import annotations

import os
import stat

import pytest

from pipelines.lint import crds
from pipelines.lint.base import LintContext
from pipelines.lint.checks import kubernetes_objects
from tests.fixtures.tools import require_tool
from tests.lint.lint_helpers import app_project, application, good_repo, role, service_account, write_docs


def test_good_builtin_objects_pass():
    assert kubernetes_objects.object_errors(role()) == []
    assert kubernetes_objects.object_errors(service_account()) == []


def test_bad_role_fails():
    bad = role()
    bad["rules"][0]["verbs"] = "create"
    errors = kubernetes_objects.object_errors(bad)
    assert len(errors) == 1 and errors[0].startswith("rules.0.verbs:")


def test_unknown_field_in_builtin_fails():
    bad = service_account()
    bad["automountServiceAccountTokenn"] = False
    assert kubernetes_objects.object_errors(bad)


def test_unknown_kind_is_a_finding_not_a_skip():
    errors = kubernetes_objects.object_errors({"apiVersion": "v1", "kind": "Rolle", "metadata": {"name": "x"}})
    assert len(errors) == 1 and "no schema" in errors[0]


class TestArgoCD:
    @pytest.fixture(autouse=True)
    def _go(self):
        require_tool("go")

    def test_good_project_and_application_pass(self):
        assert kubernetes_objects.object_errors(app_project()) == []
        assert kubernetes_objects.object_errors(application()) == []

    def test_application_missing_destination_and_misspelled_field(self):
        bad = application()
        del bad["spec"]["destination"]
        bad["spec"]["source"]["pathh"] = bad["spec"]["source"].pop("path")
        errors = kubernetes_objects.object_errors(bad)
        assert any("'destination' is a required property" in e for e in errors)
        assert any(e.startswith("spec.source:") and "pathh" in e for e in errors)

    def test_project_name_must_be_a_dns_name(self):
        bad = app_project()
        bad["metadata"]["name"] = "Kiosk_Project"
        assert any(e.startswith("metadata.name:") for e in kubernetes_objects.object_errors(bad))

    def test_schemas_come_from_the_pinned_module(self):
        assert set(crds.schemas()) >= {("argoproj.io/v1alpha1", "Application"), ("argoproj.io/v1alpha1", "AppProject")}
        assert crds.module_dir().name.endswith(f"@{crds.pinned_version()}")


def test_check_covers_workflow_dirs_and_apps_but_not_argo_workflows(tmp_path):
    require_tool("go")
    repo = good_repo(tmp_path)
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    # ServiceAccount + Role next to the workflows, AppProject + Application in apps/.
    assert (result.findings, result.checked) == ([], 4)

    bad = role()
    bad["rules"][0]["verbs"] = "create"
    write_docs(repo / "argocd" / "apps" / "extra.yaml", bad)
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert [f.target for f in result.findings] == ["argocd/apps/extra.yaml#1 (Role/kiosk-runner)"]


def test_chart_without_helm_is_a_missing_tool(tmp_path, monkeypatch):
    repo = good_repo(tmp_path)
    write_docs(
        repo / "argocd" / "charts" / "serving" / "Chart.yaml",
        {"apiVersion": "v2", "name": "serving", "version": "0.1.0"},
    )
    monkeypatch.setattr(kubernetes_objects, "find_tool", lambda name: None)
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert result.missing_tool == "helm"


def test_helm_template_output_is_validated(tmp_path, monkeypatch):
    """A stand-in `helm` that prints a fixed rendering: what is under test is that the output is read."""
    require_tool("go")
    repo = good_repo(tmp_path)
    write_docs(
        repo / "argocd" / "charts" / "serving" / "Chart.yaml",
        {"apiVersion": "v2", "name": "serving", "version": "0.1.0"},
    )
    rendered = write_docs(tmp_path / "rendered.yaml", service_account(), {**role(), "rules": "nope"})
    helm = tmp_path / "helm"
    helm.write_text(f"#!/bin/sh\ncat {rendered}\n")
    helm.chmod(helm.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setattr(kubernetes_objects, "find_tool", lambda name: helm if name == "helm" else None)
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert result.checked == 6
    assert [f.target for f in result.findings] == [
        f"{os.path.join('argocd', 'charts', 'serving', '(helm template)')}#2 (Role/kiosk-runner)"
    ]


def test_real_helm_chart_output_is_validated(tmp_path):
    require_tool("helm")
    repo = good_repo(tmp_path)
    chart = repo / "argocd" / "charts" / "serving"
    write_docs(chart / "Chart.yaml", {"apiVersion": "v2", "name": "serving", "version": "0.1.0"})
    write_docs(chart / "templates" / "sa.yaml", service_account())
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert (result.findings, result.checked) == ([], 5)

    write_docs(chart / "templates" / "role.yaml", {**role(), "rules": "nope"})
    result = kubernetes_objects.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert len(result.findings) == 1 and "(Role/kiosk-runner)" in result.findings[0].target
