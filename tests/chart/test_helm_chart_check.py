"""The `helm-chart` lint check: clean on the repository, and it does fail on a broken chart."""

from __future__ import annotations

import shutil
from pathlib import Path

from pipelines.lint.base import LintContext
from pipelines.lint.checks.helm_chart import CHECK, charts, variants
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool


def _run(repo: Path):
    return CHECK.run(LintContext(repo=repo, envs=()))


def test_repository_charts_are_clean():
    require_tool("helm")
    result = _run(REPO_ROOT)
    assert result.missing_tool is None
    assert result.findings == []
    renders = sum(len(variants(c)) for c in charts(REPO_ROOT))
    assert renders >= 4 and result.checked > renders  # every variant linted, its objects validated


def _copy_chart(tmp_path: Path) -> Path:
    chart = tmp_path / "argocd" / "charts" / "serving"
    shutil.copytree(REPO_ROOT / "argocd" / "charts" / "serving", chart)
    return chart


def test_invalid_object_in_one_stage_is_reported_for_that_stage(tmp_path: Path):
    require_tool("helm")
    chart = _copy_chart(tmp_path)
    hpa = chart / "templates" / "hpa.yaml"
    # A field the HPA API does not have, rendered only where prod's minReplicas is set.
    hpa.write_text(
        hpa.read_text().replace(
            "  minReplicas: {{ .Values.autoscaling.minReplicas }}",
            "  minReplicas: {{ .Values.autoscaling.minReplicas }}\n"
            "  {{- if gt (int .Values.autoscaling.minReplicas) 1 }}\n  minPods: 2\n  {{- end }}",
        )
    )
    findings = _run(tmp_path).findings
    assert {f.target for f in findings} == {"argocd/charts/serving/values-prod.yaml"}
    # Once per Kubernetes version validated against.
    assert len(findings) == 2
    assert all("HorizontalPodAutoscaler/serving-prod" in f.message and "minPods" in f.message for f in findings)


def test_lint_failure_is_reported(tmp_path: Path):
    require_tool("helm")
    chart = _copy_chart(tmp_path)
    (chart / "templates" / "broken.yaml").write_text("kind: {{ .Values.nothing.here }}\n")
    findings = _run(tmp_path).findings
    assert {f.target for f in findings} == {
        "argocd/charts/serving/values.yaml",
        *(f"argocd/charts/serving/{p.name}" for p in chart.glob("values-*.yaml")),
    }
    assert any(f.message.startswith("helm lint: [ERROR]") for f in findings)
    assert any(f.message.startswith("helm template: Error") for f in findings)
