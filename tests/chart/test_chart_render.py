"""The serving chart as each stage deploys it: golden renders, stage files as pure differences, schema.

Regenerate the golden files after an intended change with:
    KIOSK_UPDATE_GOLDEN=1 uv run pytest tests/chart
and review the diff like any other code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import jsonschema
import pytest
import yaml

from pipelines.lint.checks.helm_chart import Variant, charts, helm_template, validate_manifests, variants
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool

GOLDEN = Path(__file__).parent / "golden"
SERVING = REPO_ROOT / "argocd" / "charts" / "serving"
ALL_VARIANTS = [v for chart in charts(REPO_ROOT) for v in variants(chart)]
STAGE_FILES = sorted(SERVING.glob("values-*.yaml"))


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text()) or {}


def _leaves(tree: dict, prefix: tuple = ()) -> dict[tuple, object]:
    out: dict[tuple, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict) and value:
            out |= _leaves(value, (*prefix, key))
        else:
            out[(*prefix, key)] = value
    return out


def _merge(base: dict, over: dict) -> dict:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _merge(base[key], value)
        elif value is None:  # helm's way of deleting a key
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def test_every_stage_has_a_values_file():
    assert {p.name for p in STAGE_FILES} == {"values-staging.yaml", "values-canary.yaml", "values-prod.yaml"}


@pytest.mark.parametrize("variant", ALL_VARIANTS, ids=lambda v: v.release)
def test_render_matches_golden(variant: Variant):
    helm = require_tool("helm")
    rendered = helm_template(helm, variant)
    golden = GOLDEN / f"{variant.release}.yaml"
    if os.environ.get("KIOSK_UPDATE_GOLDEN") == "1":
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(rendered)
    assert golden.is_file(), f"no golden file {golden.name}: run with KIOSK_UPDATE_GOLDEN=1"
    assert rendered == golden.read_text()


def test_no_golden_file_without_a_variant():
    assert {p.stem for p in GOLDEN.glob("*.yaml")} == {v.release for v in ALL_VARIANTS}


@pytest.mark.parametrize("stage_file", STAGE_FILES, ids=lambda p: p.name)
def test_stage_file_carries_only_differences(stage_file: Path):
    base = _leaves(_load(SERVING / "values.yaml"))
    stage = _leaves(_load(stage_file))
    assert stage, f"{stage_file.name} is empty"
    unknown = sorted(k for k in stage if k not in base)
    same = sorted(k for k, v in stage.items() if k in base and base[k] == v)
    assert unknown == [], f"{stage_file.name} sets keys the base does not have: {unknown}"
    assert same == [], f"{stage_file.name} repeats base values: {same}"
    assert stage[("stage",)] == stage_file.stem.removeprefix("values-")


@pytest.mark.parametrize("stage_file", [None, *STAGE_FILES], ids=lambda p: p.name if p else "base")
def test_merged_values_satisfy_the_schema(stage_file: Path | None):
    schema = json.loads((SERVING / "values.schema.json").read_text())
    values = _load(SERVING / "values.yaml")
    if stage_file:
        values = _merge(values, _load(stage_file))
    jsonschema.validate(values, schema)


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"image": {"tag": "latest"}}, "/image/tag"),
        ({"track": "blue"}, "/track"),
        ({"model": {"repository": "gs://bucket/models"}}, "/model/repository"),
        ({"autoscaling": {"minReplicas": 0}}, "/autoscaling/minReplicas"),
        ({"replicas": 3}, "additional properties 'replicas' not allowed"),
    ],
)
def test_schema_rejects_bad_values(tmp_path: Path, override: dict, error: str):
    """Through helm itself, so the schema helm enforces is the one tested."""
    import subprocess

    helm = require_tool("helm")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(override))
    with pytest.raises(subprocess.CalledProcessError) as info:
        helm_template(helm, Variant(SERVING, bad))
    assert error in info.value.stderr


def _objects(variant: Variant) -> dict[str, dict]:
    rendered = helm_template(require_tool("helm"), variant)
    return {f"{d['kind']}/{d['metadata']['name']}": d for d in yaml.safe_load_all(rendered) if d}


def test_canary_pods_join_the_prod_service():
    prod = _objects(Variant(SERVING, SERVING / "values-prod.yaml"))
    canary = _objects(Variant(SERVING, SERVING / "values-canary.yaml"))
    assert not any(k.startswith("Service/") for k in canary)
    selector = prod["Service/serving-prod"]["spec"]["selector"]
    for pods in (prod["Deployment/serving-prod"], canary["Deployment/serving-canary"]):
        labels = pods["spec"]["template"]["metadata"]["labels"]
        assert selector.items() <= labels.items()
    # Each release still owns its own pods for scaling and disruption budgets.
    assert canary["PodDisruptionBudget/serving-canary"]["spec"]["selector"]["matchLabels"].items() <= (
        canary["Deployment/serving-canary"]["spec"]["template"]["metadata"]["labels"].items()
    )
    assert not canary["PodDisruptionBudget/serving-canary"]["spec"]["selector"]["matchLabels"].items() <= (
        prod["Deployment/serving-prod"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_validation_reports_invalid_objects_and_skips_only_known_crds():
    bad = """\
apiVersion: apps/v1
kind: Deployment
metadata: {name: d}
spec: {replicas: "two", selector: {}, template: {}}
---
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: sm}
---
apiVersion: example.com/v1
kind: Widget
metadata: {name: w}
"""
    problems, skipped, validated = validate_manifests(bad, ("1.31.0",))
    assert skipped == ["ServiceMonitor/sm"]
    assert validated == 2
    assert any(p.startswith("Deployment/d (Kubernetes 1.31.0):") and "spec.replicas" in p for p in problems)
    assert any(p.startswith("Widget/w: no Kubernetes 1.31.0 schema") for p in problems)


APPS = sorted((REPO_ROOT / "argocd" / "apps").glob("application-serving-*.yaml"))


@pytest.mark.parametrize("app_file", APPS, ids=lambda p: p.stem)
def test_serving_application_and_chart_agree_on_namespace(app_file: Path):
    """ArgoCD deploys into the Application's destination: every object the chart renders must be there."""
    app = _load(app_file)
    source, destination = app["spec"]["source"], app["spec"]["destination"]
    assert source["path"] == "argocd/charts/serving"
    objects = _objects(Variant(SERVING, SERVING / source["helm"]["valueFiles"][0]))
    namespaces = {o["metadata"].get("namespace") for o in objects.values()}
    assert namespaces == {destination["namespace"]}, app_file.name


def test_every_stage_has_an_application():
    assert {p.stem.removeprefix("application-serving-") for p in APPS} == {
        p.stem.removeprefix("values-") for p in STAGE_FILES
    }
