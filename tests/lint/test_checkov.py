"""The `checkov` check: one checkov run over argocd/ and images/."""

from __future__ import annotations

import json
import re

from pipelines.lint.base import LintContext
from pipelines.lint.checks import checkov
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool
from tests.lint.lint_helpers import good_repo, workflow_template, write_docs

GOOD_DOCKERFILE = """\
FROM python:3.12-slim@sha256:0000000000000000000000000000000000000000000000000000000000000000
RUN useradd --uid 10001 --create-home kiosk
USER 10001
HEALTHCHECK NONE
ENTRYPOINT ["python", "-m", "steps.infer"]
"""
BAD_DOCKERFILE = "FROM python:3.12-slim\nRUN pip install requests\n"


def test_pin_matches_the_install_script():
    script = (REPO_ROOT / ".ci" / "install.d" / "30-checkov.sh").read_text()
    assert re.search(r"^version=(\S+)$", script, re.M).group(1) == checkov.CHECKOV_VERSION


def test_no_directories_means_nothing_to_check(tmp_path):
    result = checkov.CHECK.run(LintContext(repo=tmp_path, envs=()))
    assert (result.checked, result.findings, result.missing_tool) == (0, [], None)


def test_concatenated_reports_are_parsed_and_deduplicated():
    report = {"check_type": "argo_workflows", "results": {"failed_checks": []}, "summary": {"passed": 1, "failed": 0}}
    stdout = json.dumps(report) + "\n" + json.dumps([report, {**report, "check_type": "dockerfile"}])
    stdout += "\n" + json.dumps({"passed": 0, "failed": 0})
    reports = checkov.parse_reports(stdout)
    assert len(reports) == 3
    assert [r["check_type"] for r in checkov.unique_reports(reports)] == ["argo_workflows", "dockerfile"]


def test_checkov_flags_the_bad_files_only(tmp_path):
    require_tool("checkov")
    repo = good_repo(tmp_path)
    insecure = workflow_template("insecure")
    del insecure["spec"]["serviceAccountName"], insecure["spec"]["securityContext"]
    write_docs(repo / "argocd" / "workflows" / "dev" / "insecure.yaml", insecure)
    (repo / "images").mkdir()
    (repo / "images" / "good.Dockerfile").write_text(GOOD_DOCKERFILE)
    (repo / "images" / "bad.Dockerfile").write_text(BAD_DOCKERFILE)

    result = checkov.CHECK.run(LintContext(repo=repo, envs=("dev",)))
    assert result.missing_tool is None
    assert result.checked > len(result.findings)
    by_file = {f.target.split(":")[0] for f in result.findings}
    assert by_file == {"argocd/workflows/dev/insecure.yaml", "images/bad.Dockerfile"}, result.findings
    ids = {f.message.split(":")[0] for f in result.findings}
    assert {"CKV_ARGO_1", "CKV_ARGO_2", "CKV_DOCKER_3"} <= ids
