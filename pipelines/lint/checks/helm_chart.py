"""Every chart under `argocd/charts/`: `helm lint --strict` and a schema check of what it renders.

Each chart is linted and rendered with its base values and with each `values-<stage>.yaml` layered
on top, the way the ArgoCD Application of that stage renders it (release `<chart>-<stage>`,
namespace `kiosk-serving`). The rendered objects are validated with kubernetes-validate in strict
mode against the oldest Kubernetes the chart supports and the newest the validator knows.
Kinds from CRDs have no bundled schema: those in `CRD_KINDS` (the Prometheus Operator's
ServiceMonitor) are skipped, any other unknown kind is a finding, so a mistyped apiVersion is caught.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipelines.lint.base import Check, CheckResult, Finding, LintContext
from pipelines.tools import find_tool

NAMESPACE = "kiosk-serving"
CRD_KINDS = frozenset({("monitoring.coreos.com/v1", "ServiceMonitor")})
OLDEST_KUBERNETES = "1.27.0"  # matches Chart.yaml kubeVersion of the serving chart


@dataclass(frozen=True)
class Variant:
    """One way a chart is deployed: its base values, or base + one stage file."""

    chart: Path
    values: Path | None

    @property
    def stage(self) -> str | None:
        return self.values.name.removeprefix("values-").removesuffix(".yaml") if self.values else None

    @property
    def release(self) -> str:
        return f"{self.chart.name}-{self.stage}" if self.stage else self.chart.name

    def values_args(self) -> list[str]:
        return ["--values", str(self.values)] if self.values else []


def charts(repo: Path) -> list[Path]:
    return sorted(p.parent for p in (repo / "argocd" / "charts").glob("*/Chart.yaml"))


def variants(chart: Path) -> list[Variant]:
    return [Variant(chart, None)] + [Variant(chart, v) for v in sorted(chart.glob("values-*.yaml"))]


def helm_lint(helm: Path, variant: Variant) -> list[str]:
    """Problems `helm lint --strict` reports; empty when clean."""
    proc = subprocess.run(
        [str(helm), "lint", "--strict", str(variant.chart), *variant.values_args()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if proc.returncode == 0:
        return []
    lines = [ln.strip() for ln in (proc.stdout + proc.stderr).splitlines()]
    return [ln for ln in lines if ln.startswith(("[ERROR]", "[WARNING]", "Error"))] or [f"exit {proc.returncode}"]


def helm_template(helm: Path, variant: Variant) -> str:
    """The rendered manifests; raises CalledProcessError with helm's message on failure."""
    return subprocess.run(
        [str(helm), "template", variant.release, str(variant.chart), "--namespace", NAMESPACE, *variant.values_args()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout


def validate_manifests(text: str, versions: tuple[str, ...]) -> tuple[list[str], list[str], int]:
    """(problems, skipped kinds, objects validated) for a multi-document manifest stream."""
    import kubernetes_validate

    problems: list[str] = []
    skipped: list[str] = []
    validated = 0
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        api_kind = (doc.get("apiVersion"), doc.get("kind"))
        name = f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
        if api_kind in CRD_KINDS:
            skipped.append(name)
            continue
        validated += 1
        for version in versions:
            try:
                kubernetes_validate.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                problems.append(f"{name} (Kubernetes {version}): {exc.message} at {'.'.join(map(str, exc.path))}")
            except kubernetes_validate.SchemaNotFoundError:
                problems.append(f"{name}: no Kubernetes {version} schema for {api_kind[0]} {api_kind[1]}")
    return problems, skipped, validated


def run(ctx: LintContext) -> CheckResult:
    helm = find_tool("helm")
    if helm is None:
        return CheckResult(missing_tool="helm")
    try:
        import kubernetes_validate
    except ImportError:
        return CheckResult(missing_tool="kubernetes-validate")
    versions = (OLDEST_KUBERNETES, kubernetes_validate.latest_version())
    result = CheckResult()
    for chart in charts(ctx.repo):
        for variant in variants(chart):
            target = str((variant.values or chart / "values.yaml").relative_to(ctx.repo))
            result.checked += 1
            result.findings += [Finding(target, f"helm lint: {p}") for p in helm_lint(helm, variant)]
            try:
                rendered = helm_template(helm, variant)
            except subprocess.CalledProcessError as exc:
                result.findings.append(Finding(target, f"helm template: {exc.stderr.strip()}"))
                continue
            problems, _skipped, validated = validate_manifests(rendered, versions)
            result.checked += validated
            result.findings += [Finding(target, p) for p in problems]
    return result


CHECK = Check(
    name="helm-chart",
    description="helm lint --strict and kubernetes-validate of argocd/charts/* per values file (CRD kinds skipped)",
    run=run,
)
