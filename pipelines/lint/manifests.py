"""Reading the manifests the checks look at: multi-document YAML, each document with its origin."""

from __future__ import annotations

import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipelines.lint.base import CheckResult, Finding, LintContext
from pipelines.tools import find_tool, in_ci

ARGO_KINDS = frozenset({"Workflow", "WorkflowTemplate", "ClusterWorkflowTemplate", "CronWorkflow"})
ARGO_GROUP = "argoproj.io/"


@dataclass(frozen=True)
class Document:
    path: Path
    index: int  # 0-based position in the file
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        meta = self.body.get("metadata") or {}
        return str(meta.get("name") or meta.get("generateName") or f"document #{self.index + 1}")

    def target(self, repo: Path) -> str:
        """`file#n (Kind/name)`, relative to the repo when possible, for findings people can open."""
        try:
            shown = self.path.relative_to(repo)
        except ValueError:
            shown = self.path
        return f"{shown}#{self.index + 1} ({self.kind}/{self.name})"

    @property
    def is_argo_workflow_kind(self) -> bool:
        return str(self.body.get("apiVersion", "")).startswith(ARGO_GROUP) and self.kind in ARGO_KINDS


def read_documents(paths: Iterable[Path], result: CheckResult, repo: Path) -> Iterator[Document]:
    """Yield every mapping document; an unparseable file becomes a finding, not an exception."""
    for path in paths:
        try:
            loaded = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as exc:
            result.findings.append(Finding(target=_relative(path, repo), message=f"unreadable YAML: {exc}"))
            continue
        for index, body in enumerate(loaded):
            if body is None:
                continue
            if not isinstance(body, dict):
                result.findings.append(
                    Finding(target=f"{_relative(path, repo)}#{index + 1}", message="document is not a mapping")
                )
                continue
            yield Document(path=path, index=index, body=body)


def app_files(ctx: LintContext) -> list[Path]:
    """ArgoCD's own objects (AppProject, Applications) under `argocd/apps/` and `argocd/apps/local/`."""
    dirs = (ctx.argocd / "apps", ctx.argocd / "apps" / "local")
    return sorted(p for d in dirs for pattern in ("*.yaml", "*.yml") for p in d.glob(pattern))


def _relative(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo))
    except ValueError:
        return str(path)


def missing_tool(name: str) -> CheckResult:
    """A check whose tool is absent: `kiosk lint` fails on it (locally too, unlike the tests)."""
    hint = "run .ci/install" + (" (CI=true)" if in_ci() else "")
    return CheckResult(missing_tool=f"{name} ({hint})")


def run_tool(name: str, args: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str] | None:
    """Run `.tools/bin`/PATH tool `name`; None when it is not installed."""
    path = find_tool(name)
    if path is None:
        return None
    return subprocess.run([str(path), *args], capture_output=True, text=True, check=False, **kwargs)
