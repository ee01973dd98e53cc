"""checkov over `argocd/` and `images/`: argo_workflows, kubernetes, dockerfile and helm frameworks.

checkov lives in its own uv tool environment (`uvx --from checkov==VERSION`): it pins an old boto3
that must not enter the project's lock. `.ci/install.d/30-checkov.sh` pre-warms it and installs the
`.tools/bin/checkov` wrapper; without the wrapper we call uvx directly with the same pin.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from pipelines import project
from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.lint.manifests import missing_tool
from pipelines.tools import find_tool

CHECKOV_VERSION = "3.3.30"
DIRECTORIES = ("argocd", "images")
FRAMEWORKS = ("argo_workflows", "kubernetes", "dockerfile", "helm")


def checkov_command() -> list[str] | None:
    wrapper = find_tool("checkov")
    if wrapper is not None:
        return [str(wrapper)]
    uvx = find_tool("uvx")
    if uvx is not None:
        return [str(uvx), "--from", f"checkov=={CHECKOV_VERSION}", "checkov"]
    return None


def parse_reports(stdout: str) -> list[dict[str, Any]]:
    """Checkov prints one JSON value per `-d` (a report, or a list of them per framework)."""
    decoder = json.JSONDecoder()
    reports: list[dict[str, Any]] = []
    position = 0
    while True:
        while position < len(stdout) and stdout[position].isspace():
            position += 1
        if position >= len(stdout):
            return reports
        value, position = decoder.raw_decode(stdout, position)
        for item in value if isinstance(value, list) else [value]:
            # With nothing to scan checkov prints a bare summary, not a report.
            if isinstance(item, dict) and "results" in item:
                reports.append(item)


def unique_reports(reports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # checkov 3.3.30 repeats the argo_workflows report under every `-d` root once it has one.
    seen: set[str] = set()
    unique = []
    for report in reports:
        key = json.dumps([report.get("check_type"), report["results"], report.get("summary")], sort_keys=True)
        if key not in seen:
            seen.add(key)
            unique.append(report)
    return unique


def run(ctx: LintContext) -> CheckResult:
    result = CheckResult()
    ctx = LintContext(repo=ctx.repo.resolve(), envs=ctx.envs)
    roots = [name for name in DIRECTORIES if (ctx.repo / name).is_dir()]
    if not roots:
        return result
    command = checkov_command()
    if command is None:
        return missing_tool("checkov")
    args = [arg for root in roots for arg in ("-d", root)]
    path = [str(p) for p in [project.tools_bin()] if p is not None]
    env = {**os.environ, "PATH": os.pathsep.join([*path, os.environ.get("PATH", "")])}
    proc = subprocess.run(
        [*command, *args, "--framework", *FRAMEWORKS, "--skip-download", "-o", "json", "--quiet"],
        cwd=ctx.repo,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        reports = unique_reports(parse_reports(proc.stdout))
    except json.JSONDecodeError:
        message = (proc.stderr.strip() or proc.stdout.strip())[-2000:]
        result.findings.append(Finding(target="checkov", message=f"exit {proc.returncode}: {message}"))
        return result
    for report in reports:
        summary = report.get("summary", {})
        result.checked += int(summary.get("passed", 0)) + int(summary.get("failed", 0))
        result.findings.extend(_findings(report, ctx, roots))
        if summary.get("parsing_errors"):
            result.findings.append(
                Finding(target=f"checkov {report.get('check_type')}", message="files checkov could not parse")
            )
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not result.findings):
        result.findings.append(Finding(target="checkov", message=f"exit {proc.returncode}: {proc.stderr[-2000:]}"))
    return result


def locate(failed: dict[str, Any], ctx: LintContext, roots: list[str]) -> str:
    """The repo-relative file of a failed check.

    checkov 3.3.30 is inconsistent: the argo_workflows and dockerfile runners give `file_path`
    relative to the `-d` root, the kubernetes runner relative to the working directory (and then
    a `file_abs_path` with the root doubled). So take the first candidate that exists.
    """
    file_path = str(failed.get("file_path", "")).lstrip("/")
    candidates = [failed.get("file_abs_path") or "", ctx.repo / file_path]
    candidates += [ctx.repo / root / file_path for root in roots]
    for candidate in candidates:
        path = Path(candidate)
        if candidate and path.is_file():
            try:
                return str(path.resolve().relative_to(ctx.repo))
            except ValueError:
                return str(path)
    return file_path or "?"


def _findings(report: dict[str, Any], ctx: LintContext, roots: list[str]) -> list[Finding]:
    found = []
    for failed in report["results"].get("failed_checks", []):
        start, end = (failed.get("file_line_range") or [0, 0])[:2]
        found.append(
            Finding(
                target=f"{locate(failed, ctx, roots)}:{start}-{end} ({failed.get('resource')})",
                message=f"{failed['check_id']}: {failed.get('check_name')}",
            )
        )
    return found


CHECK = Check(
    name="checkov",
    description="checkov (argo_workflows, kubernetes, dockerfile, helm) on argocd/ and images/",
    run=run,
)
