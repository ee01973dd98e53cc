"""`kiosk lint` itself: discovery, summary, exit status."""

from __future__ import annotations

import ast

import typer
from typer.testing import CliRunner

from pipelines import lint
from pipelines.cli import app
from pipelines.lint import manifests
from pipelines.lint.base import Check
from pipelines.tools import REPO_ROOT
from tests.lint.lint_helpers import cron_workflow, good_repo, write_docs

CHEAP = ["--check", "argo-security", "--check", "kubernetes-objects"]


def invoke(*args: str):
    return CliRunner().invoke(app, ["lint", *args], catch_exceptions=False)


def test_every_check_module_is_discovered():
    """Any module under checks/ that assigns CHECK is run, with no list to keep in sync."""
    defining = set()
    for path in (REPO_ROOT / "pipelines" / "lint" / "checks").glob("*.py"):
        tree = ast.parse(path.read_text())
        if any(
            isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "CHECK" for t in n.targets) for n in tree.body
        ):
            defining.add(path.stem)
    checks = lint.discover_checks()
    assert len(defining) >= 5
    assert {c.run.__module__.rsplit(".", 1)[1] for c in checks} == defining
    assert all(isinstance(c, Check) for c in checks)
    assert len({c.name for c in checks}) == len(checks)


def test_good_tree_passes(tmp_path):
    result = invoke("--repo", str(good_repo(tmp_path)), "--env", "dev", *CHEAP)
    assert result.exit_code == 0, result.output
    assert "argo-security" in result.output and "kubernetes-objects" in result.output


def test_bad_tree_fails_and_names_the_check(tmp_path):
    repo = good_repo(tmp_path)
    cron = cron_workflow(name="nightly-as-default")
    cron["spec"]["workflowSpec"]["serviceAccountName"] = "default"
    write_docs(repo / "argocd" / "workflows" / "dev" / "bad.yaml", cron)
    result = invoke("--repo", str(repo), *CHEAP)
    assert result.exit_code == 1
    assert "FAIL" in result.output
    finding_lines = [line for line in result.output.splitlines() if line.startswith("argo-security ")]
    assert len(finding_lines) == 1
    assert "argocd/workflows/dev/bad.yaml#1 (CronWorkflow/nightly-as-default)" in finding_lines[0]
    assert "CKV_ARGO_1" in finding_lines[0]


def test_env_selection(tmp_path):
    repo = good_repo(tmp_path)
    cron = cron_workflow(name="prod-only")
    del cron["spec"]["workflowSpec"]["securityContext"]
    write_docs(repo / "argocd" / "workflows" / "prod" / "bad.yaml", cron)
    assert invoke("--repo", str(repo), "-e", "dev", *CHEAP).exit_code == 0
    assert invoke("--repo", str(repo), "-e", "prod", *CHEAP).exit_code == 1
    assert invoke("--repo", str(repo), *CHEAP).exit_code == 1  # default: every env
    assert invoke("--repo", str(repo), "-e", "nope", *CHEAP).exit_code == 2


def test_missing_tool_fails(tmp_path, monkeypatch):
    monkeypatch.setattr(manifests, "find_tool", lambda name: None)
    result = invoke("--repo", str(good_repo(tmp_path)), "--check", "argo-validate")
    assert result.exit_code == 1
    assert "missing tool: argo-validate" in result.output


def test_a_crashing_check_is_a_finding(tmp_path, monkeypatch):
    def boom(ctx):
        raise RuntimeError("bug in a check")

    monkeypatch.setattr(lint, "discover_checks", lambda: [Check(name="broken", description="", run=boom)])
    result = invoke("--repo", str(good_repo(tmp_path)))
    assert result.exit_code == 1 and "bug in a check" in result.output


def test_repo_option_is_hidden_but_works(tmp_path):
    """--repo (a repository to lint other than this one, for tests) exists and is hidden from --help."""
    command = typer.main.get_command(app).commands["lint"]
    (option,) = [p for p in command.params if "--repo" in getattr(p, "opts", [])]
    assert option.hidden
    assert "--repo" not in CliRunner().invoke(app, ["lint", "--help"]).output
    assert invoke("--repo", str(good_repo(tmp_path)), *CHEAP).exit_code == 0
