"""The contract between `kiosk lint` and its checks.

Each module in `pipelines/lint/checks/` exposes `CHECK: Check`; `kiosk lint` discovers them, so a new
check is one new file and no list to edit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Finding:
    """One problem: `target` is a file (and document) path, `message` says what is wrong."""

    target: str
    message: str


@dataclass
class CheckResult:
    """`checked` counts what was examined, so a check that silently looked at nothing is visible.

    `missing_tool` names a required program that is not installed: `kiosk lint` fails on it.
    """

    checked: int = 0
    findings: list[Finding] = field(default_factory=list)
    missing_tool: str | None = None


@dataclass(frozen=True)
class LintContext:
    repo: Path
    envs: tuple[str, ...]

    @property
    def argocd(self) -> Path:
        return self.repo / "argocd"

    def operations_files(self) -> list[Path]:
        """Rendered dashboards' ConfigMaps, alert rules and GPU capacity objects of the selected environments."""
        files: list[Path] = []
        for env in self.envs:
            for folder in ("observability", "cluster"):
                files.extend(sorted((self.argocd / folder / env).glob("*.yaml")))
        return files

    def workflow_files(self) -> list[Path]:
        """Rendered manifests of the selected environments, in a stable order."""
        files: list[Path] = []
        for env in self.envs:
            files.extend(sorted((self.argocd / "workflows" / env).glob("*.yaml")))
        return files


@dataclass(frozen=True)
class Check:
    name: str
    description: str
    run: Callable[[LintContext], CheckResult]
