"""The rendered dashboards, rules and GPU capacity objects agree with the workflows and the config.

The NodePool is read next to the rendered batch-inference WorkflowTemplate: every GPU pod template
there (the ones with a node selector) must be schedulable on the pool's nodes, i.e. tolerate its
taints and match its labels, or Karpenter would never pick this pool for a pending infer pod.
"""

from __future__ import annotations

import json

import pytest
import yaml

from pipelines import render
from pipelines.config import ENVIRONMENTS, load_config
from pipelines.config.model import Toleration
from pipelines.manifests import capacity
from pipelines.observability import alerts, panels
from pipelines.tools import REPO_ROOT

GPU_ENVS = [env for env in ENVIRONMENTS if load_config(env).gpu.count]


def _docs(path):
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _gpu_templates(env: str) -> list[dict]:
    found = []
    for path in (REPO_ROOT / render.WORKFLOWS_DIR / env).glob("workflowtemplate-*.yaml"):
        for doc in _docs(path):
            found += [t for t in doc["spec"]["templates"] if t.get("nodeSelector")]
    return found


@pytest.mark.parametrize("env", GPU_ENVS)
def test_node_pool_takes_every_gpu_pod(env: str) -> None:
    (pool,) = _docs(REPO_ROOT / render.CLUSTER_DIR / env / "nodepool-kiosk-gpu.yaml")
    node = pool["spec"]["template"]
    gpu_templates = _gpu_templates(env)
    assert {t["name"] for t in gpu_templates} >= {"infer"}
    for template in gpu_templates:
        tolerations = [Toleration(**t) for t in template.get("tolerations", [])]
        for taint in node["spec"]["taints"]:
            assert capacity.tolerated(taint, tolerations), (template["name"], taint)
        assert template["nodeSelector"].items() <= node["metadata"]["labels"].items(), template["name"]


@pytest.mark.parametrize("env", GPU_ENVS)
def test_node_pool_scales_to_zero_within_config_limits(env: str) -> None:
    cfg = load_config(env)
    (pool,) = _docs(REPO_ROOT / render.CLUSTER_DIR / env / "nodepool-kiosk-gpu.yaml")
    assert pool["spec"]["limits"] == {cfg.gpu.resource: str(cfg.capacity.max_gpus)}
    assert pool["spec"]["disruption"]["consolidationPolicy"] == "WhenEmpty"
    assert pool["spec"]["disruption"]["consolidateAfter"] == cfg.capacity.consolidate_after
    (node_class,) = _docs(REPO_ROOT / render.CLUSTER_DIR / env / "ec2nodeclass-kiosk-gpu.yaml")
    assert pool["spec"]["template"]["spec"]["nodeClassRef"]["name"] == node_class["metadata"]["name"]
    (slicing,) = _docs(REPO_ROOT / render.CLUSTER_DIR / env / "configmap-kiosk-time-slicing.yaml")
    for stage, replicas in cfg.capacity.time_slicing_replicas.items():
        config = yaml.safe_load(slicing["data"][stage])
        assert config["sharing"]["timeSlicing"]["resources"] == [{"name": cfg.gpu.resource, "replicas": replicas}]


def test_per_env_limits_differ_only_where_the_overlay_says() -> None:
    assert load_config("dev").capacity.max_gpus == 2 and load_config("prod").capacity.max_gpus == 32
    assert load_config("staging").capacity.max_gpus == load_config("local").capacity.max_gpus == 8


def test_no_capacity_objects_without_gpus() -> None:
    assert capacity.build_all(load_config("local")) == []
    assert not (REPO_ROOT / render.CLUSTER_DIR / "local").exists()


def test_equal_toleration_becomes_a_taint_with_its_value() -> None:
    cfg = load_config("dev")
    tol = Toleration(key="dedicated", operator="Equal", value="kiosk", effect="NoSchedule")
    cfg = cfg.model_copy(update={"gpu": cfg.gpu.model_copy(update={"tolerations": [tol]})})
    assert capacity.taints(cfg) == [{"key": "dedicated", "value": "kiosk", "effect": "NoSchedule"}]
    assert capacity.tolerated(capacity.taints(cfg)[0], [tol])
    assert not capacity.tolerated({"key": "dedicated", "value": "other", "effect": "NoSchedule"}, [tol])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_dashboards_ship_as_labelled_config_maps_and_json(env: str) -> None:
    cfg = load_config(env)
    directory = REPO_ROOT / render.OBSERVABILITY_DIR / env
    for spec in panels.all_dashboards(cfg):
        (config_map,) = _docs(directory / f"configmap-{spec.uid}-dashboard.yaml")
        assert config_map["metadata"]["labels"][cfg.observability.dashboard_label] == "1"
        assert config_map["metadata"]["namespace"] == cfg.observability.grafana_namespace
        model = json.loads(config_map["data"][f"{spec.uid}.json"])
        plain = json.loads((directory / f"dashboard-{spec.uid}.json").read_text())
        assert plain.pop("__generated") and plain == model
        assert [p["title"] for p in model["panels"]] == [p.title for p in spec.panels]
        assert [[t["expr"] for t in p["targets"]] for p in model["panels"]] == [
            [q.expr for q in p.queries] for p in spec.panels
        ]
        assert len({(p["gridPos"]["x"], p["gridPos"]["y"]) for p in model["panels"]}) == len(spec.panels)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rule_thresholds_come_from_config(env: str) -> None:
    cfg = load_config(env)
    (rule,) = _docs(REPO_ROOT / render.OBSERVABILITY_DIR / env / "prometheusrule-kiosk-alerts.yaml")
    by_name = {r["alert"]: r for r in rule["spec"]["groups"][0]["rules"]}
    a = cfg.observability.alerts
    assert f"> {a.failure_ratio:g} and" in by_name["KioskFailureRatioHigh"]["expr"]
    assert f"< {a.gpu_idle_percent:g}" in by_name["KioskGpuIdle"]["expr"]
    assert by_name["KioskGpuIdle"]["for"] == a.gpu_idle_for
    assert by_name["KioskWorkflowControllerDown"]["for"] == a.controller_down_for
    missed = int(alerts.retention_period(cfg).total_seconds()) * a.retention_missed_periods
    assert f"> {missed})" in by_name["KioskRetentionNotSucceeding"]["expr"]
    assert rule["metadata"]["labels"].items() >= cfg.observability.rule_labels.items()


def test_a_monthly_retention_schedule_needs_an_explicit_period(tmp_path) -> None:
    for path in (REPO_ROOT / "pipelines" / "config").glob("*.yaml"):
        (tmp_path / path.name).write_text(path.read_text())
    with (tmp_path / "dev.yaml").open("a") as overlay:
        overlay.write('retention:\n  cron:\n    schedules: ["0 3 1 * *"]\n')
    with pytest.raises(render.ConfigError, match=r"dev\.yaml: retention\.cron\.schedules: .*retention_period"):
        render.render_observability("dev", tmp_path)
    with (tmp_path / "dev.yaml").open("a") as overlay:
        overlay.write("observability:\n  alerts:\n    retention_period: 31d\n")
    files = render.render_observability("dev", tmp_path)
    rule = next(text for text in files.values() if "KioskRetentionNotSucceeding" in text)
    periods = load_config("dev", tmp_path).observability.alerts.retention_missed_periods
    assert f"[{31 * periods}d]" in rule  # the explicit period, not the schedule's, sets the window


def test_observability_doc_lists_every_panel_with_its_queries() -> None:
    readme = (REPO_ROOT / "docs" / "observability.md").read_text()
    for board in panels.all_dashboards(load_config("prod")):
        for panel in board.panels:
            row = next((line for line in readme.splitlines() if line.startswith(f"| {panel.title} |")), None)
            assert row, f"docs/observability.md has no row for panel {panel.title!r}"
            for query in panel.queries:
                assert f"`{query.expr.replace('|', '&#124;')}`" in row, (panel.title, query.expr)
    for alert in alerts.alerts(load_config("prod")):
        assert f"| {alert.name} |" in readme, alert.name
