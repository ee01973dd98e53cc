"""Argo's own validator (`tools/argo-validate`, the code behind `argo lint --offline`).

Each environment is validated in one run over all its files, so `templateRef` and
`workflowTemplateRef` resolve among the rendered templates of that environment. Environments are
separate runs because each renders the same template names (for its own namespace).
"""

from __future__ import annotations

import json
from pathlib import Path

from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.lint.manifests import missing_tool, run_tool

TOOL = "argo-validate"


def validate_files(files: list[Path], repo: Path, result: CheckResult) -> None:
    """Run the validator over `files` together and add its findings and count to `result`."""
    proc = run_tool(TOOL, [str(f) for f in files], cwd=repo)
    if proc is None:
        result.missing_tool = TOOL
        return
    if proc.returncode not in (0, 1):
        message = proc.stderr.strip() or f"exit status {proc.returncode}"
        result.findings.append(Finding(target=TOOL, message=message))
        return
    summary = None
    for line in proc.stdout.splitlines():
        record = json.loads(line)
        if "summary" in record:
            summary = record["summary"]
            continue
        target = _relative(Path(record["file"]), repo)
        result.findings.append(Finding(target=f"{target} ({record['kind']}/{record['name']})", message=record["error"]))
    if summary is None:
        result.findings.append(Finding(target=TOOL, message=f"no summary line in output: {proc.stdout[-500:]!r}"))
        return
    result.checked += summary["validated"]


def _relative(path: Path, repo: Path) -> str:
    try:
        return str(path.resolve().relative_to(repo))
    except ValueError:
        return str(path)


def run(ctx: LintContext) -> CheckResult:
    result = CheckResult()
    for env in ctx.envs:
        files = sorted((ctx.argocd / "workflows" / env).glob("*.yaml"))
        if not files:
            continue
        validate_files(files, ctx.repo, result)
        if result.missing_tool:
            return missing_tool(TOOL)
    return result


CHECK = Check(
    name="argo-validate",
    description="Argo's own validation (argo lint --offline) of every rendered Argo object, with cross-references",
    run=run,
)
