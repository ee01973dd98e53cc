"""argo-validate (tools/argo-validate) and the `argo-validate` lint check."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines import argo_module
from pipelines.lint.base import LintContext
from pipelines.lint.checks import argo_validator
from pipelines.lint.manifests import ARGO_KINDS
from tests.fixtures.tools import require_tool
from tests.lint.lint_helpers import caller_template, cron_workflow, good_repo, role, workflow_template, write_docs


def validate(*files: Path) -> tuple[int, list[dict], dict, str]:
    tool = require_tool("argo-validate")
    proc = subprocess.run([str(tool), *map(str, files)], capture_output=True, text=True, check=False, timeout=120)
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    summary = records.pop()["summary"] if records else {}
    return proc.returncode, records, summary, proc.stderr


def test_good_manifests_pass_and_other_kinds_are_skipped(tmp_path):
    files = [
        write_docs(tmp_path / "a.yaml", workflow_template(), role()),
        write_docs(tmp_path / "b.yaml", caller_template(), cron_workflow()),
    ]
    rc, findings, summary, _ = validate(*files)
    assert (rc, findings) == (0, [])
    assert summary == {"files": 2, "validated": 3, "skipped": 1, "findings": 0}


def test_template_ref_resolves_only_when_the_target_is_given(tmp_path):
    target = write_docs(tmp_path / "target.yaml", workflow_template())
    caller = write_docs(tmp_path / "caller.yaml", caller_template(), cron_workflow())
    assert validate(target, caller)[0] == 0

    rc, findings, _, _ = validate(caller)
    assert rc == 1
    assert {(f["kind"], f["name"]) for f in findings} == {
        ("WorkflowTemplate", "kiosk-caller"),
        ("CronWorkflow", "kiosk-nightly"),
    }
    assert all("kiosk-batch" in f["error"] for f in findings)
    assert all(f["file"] == str(caller) for f in findings)


def test_unknown_field_is_a_finding(tmp_path):
    body = workflow_template()
    body["spec"]["templates"][0]["container"]["imagePullPolicyy"] = "Always"
    rc, findings, _, _ = validate(write_docs(tmp_path / "t.yaml", body))
    assert rc == 1
    assert len(findings) == 1 and "imagePullPolicyy" in findings[0]["error"]


def test_semantic_error_is_a_finding(tmp_path):
    body = workflow_template()
    body["spec"]["entrypoint"] = "missing"
    rc, findings, _, _ = validate(write_docs(tmp_path / "t.yaml", body))
    assert rc == 1 and "missing" in findings[0]["error"]


def test_duplicate_template_names_are_a_finding(tmp_path):
    rc, findings, _, _ = validate(write_docs(tmp_path / "t.yaml", workflow_template(), workflow_template()))
    assert rc == 1 and any("duplicate WorkflowTemplate" in f["error"] for f in findings)


@pytest.mark.parametrize("content", ["kind: [unclosed\n", "just a string\n"])
def test_unparseable_input_exits_2_naming_the_file(tmp_path, content):
    bad = tmp_path / "broken.yaml"
    bad.write_text(content)
    rc, _, _, stderr = validate(write_docs(tmp_path / "ok.yaml", workflow_template()), bad)
    assert rc == 2 and str(bad) in stderr


def test_unreadable_file_exits_2(tmp_path):
    rc, _, _, stderr = validate(tmp_path / "absent.yaml")
    assert rc == 2 and "absent.yaml" in stderr


def upstream_examples() -> list[Path]:
    require_tool("go")
    return sorted((argo_module.module_dir() / "examples").rglob("*.yaml"))


def argo_documents(files: list[Path]) -> int:
    count = 0
    for path in files:
        for body in yaml.safe_load_all(path.read_text()):
            if isinstance(body, dict) and body.get("kind") in ARGO_KINDS:
                count += 1
    return count


def test_upstream_examples_validate(tmp_path):
    """Argo's own examples pass, bar YAML that is broken outright (duplicate keys, which
    `argo lint` silently drops); every Argo document in them is validated.
    """
    files = upstream_examples()
    assert len(files) > 50
    rc, findings, summary, stderr = validate(*files)
    assert rc in (0, 1), stderr
    assert summary["validated"] == argo_documents(files)
    assert [f for f in findings if "already set in map" not in f["error"]] == []


def test_upstream_cross_file_references_fail_without_their_targets():
    """Examples calling templates by reference need the files defining them."""
    files = upstream_examples()
    calling = [f for f in files if "templateRef" in f.read_text() or "workflowTemplateRef" in f.read_text()]
    defining = {
        f
        for f in files
        if "kind: WorkflowTemplate" in f.read_text() or "kind: ClusterWorkflowTemplate" in f.read_text()
    }
    callers_only = [f for f in calling if f not in defining]
    assert callers_only
    rc, findings, _, _ = validate(*callers_only)
    assert rc == 1
    assert any("couldn't find" in f["error"] for f in findings)


def test_check_runs_per_environment(tmp_path):
    require_tool("argo-validate")
    repo = good_repo(tmp_path)
    ctx = LintContext(repo=repo, envs=("dev",))
    result = argo_validator.CHECK.run(ctx)
    assert (result.findings, result.missing_tool, result.checked) == ([], None, 3)

    (repo / "argocd" / "workflows" / "dev" / "kiosk-batch.yaml").unlink()
    result = argo_validator.CHECK.run(ctx)
    assert result.findings and all("kiosk-batch" in f.message for f in result.findings)
    assert all(f.target.startswith("argocd/workflows/dev/") for f in result.findings)
