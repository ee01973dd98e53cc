"""`kiosk lint`: run every check in `pipelines/lint/checks/`, print a summary, fail on any finding.

Checks are discovered (any module there exposing `CHECK`), so adding a check is adding a file.
A missing tool is a failure too: a lint that silently skipped its validator would pass bad YAML.
"""

from __future__ import annotations

import importlib
import pkgutil
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from pipelines import project
from pipelines.lint import checks as checks_package
from pipelines.lint.base import Check, CheckResult, Finding, LintContext


def discover_checks() -> list[Check]:
    """Every `CHECK` in `pipelines/lint/checks/`, in module-name order."""
    found: list[Check] = []
    for info in sorted(pkgutil.iter_modules(checks_package.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{checks_package.__name__}.{info.name}")
        check = getattr(module, "CHECK", None)
        if isinstance(check, Check):
            found.append(check)
    return found


def available_envs(repo: Path) -> tuple[str, ...]:
    root = repo / "argocd" / "workflows"
    if not root.is_dir():
        return ()
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir()))


def run_check(check: Check, ctx: LintContext) -> CheckResult:
    """A crashing check is a finding of that check, so one bug does not hide the other results."""
    try:
        return check.run(ctx)
    except Exception as exc:
        return CheckResult(findings=[Finding(target=check.name, message=f"check crashed: {exc!r}")])


def command(
    env: list[str] = typer.Option(
        [], "--env", "-e", help="Environment under argocd/workflows/ to lint (repeatable; default: all)."
    ),
    check_names: list[str] = typer.Option(
        [], "--check", "-c", help="Run only these checks (repeatable; default: all)."
    ),
    repo: Path | None = typer.Option(None, "--repo", hidden=True, help="Repository root (tests)."),
) -> None:
    """Validate the rendered manifests, chart and images; exit 1 on any finding or missing tool."""
    console = Console()
    repo = (repo or project.root()).resolve()
    known_envs = available_envs(repo)
    unknown = sorted(set(env) - set(known_envs))
    if unknown:
        raise typer.BadParameter(f"no argocd/workflows/{unknown[0]}/ (have: {', '.join(known_envs) or 'none'})")
    ctx = LintContext(repo=repo, envs=tuple(env) or known_envs)

    selected = discover_checks()
    if check_names:
        names = {c.name for c in selected}
        missing = sorted(set(check_names) - names)
        if missing:
            raise typer.BadParameter(f"unknown check {missing[0]!r} (have: {', '.join(sorted(names))})")
        selected = [c for c in selected if c.name in check_names]

    table = Table(title=f"kiosk lint ({', '.join(ctx.envs) or 'no environments'})")
    for column in ("check", "checked", "findings", "status", "seconds"):
        table.add_column(column, justify="right" if column in {"checked", "findings", "seconds"} else "left")

    failed = False
    details: list[tuple[str, Finding]] = []
    for check in selected:
        started = time.monotonic()
        result = run_check(check, ctx)
        elapsed = time.monotonic() - started
        if result.missing_tool:
            status = f"[red]missing tool: {result.missing_tool}[/red]"
        elif result.findings:
            status = "[red]FAIL[/red]"
        else:
            status = "[green]ok[/green]"
        failed |= bool(result.missing_tool or result.findings)
        details.extend((check.name, f) for f in result.findings)
        table.add_row(check.name, str(result.checked), str(len(result.findings)), status, f"{elapsed:.1f}")

    console.print(table)
    for name, finding in details:
        console.print(
            f"[bold]{escape(name)}[/bold] {escape(finding.target)}: {escape(finding.message)}",
            highlight=False,
            soft_wrap=True,
        )
    if failed:
        raise typer.Exit(1)
