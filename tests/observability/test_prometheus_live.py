"""Every dashboard query returns data from a real Prometheus fed by a real run.

A real Prometheus scrapes a real Pushgateway every second while the local runner (`kiosk run`'s
engine) runs the rendered `local` templates, re-rendered with the Pushgateway's address: the demo's
synthetic data, `batch-inference` (with one image ingest rejects and one inference fails) and a
`retention-cleanup` that deletes for real. Then each panel's PromQL, with its `$variables`
substituted, must return a non-empty result, and each alert expression must evaluate, both as a
query and as a rule Prometheus loaded.

Series nothing here can emit are pushed under the job `kiosk-test-fed`, with their real names, and
said so in FED below:
- DCGM_FI_DEV_GPU_UTIL / DCGM_FI_DEV_FB_USED: dcgm-exporter needs an NVIDIA GPU;
- argo_workflows_kiosk_workflow_*: the workflow-controller emits template metrics, and the local
  runner is not the controller. The pushed values are the real runs' durations and phases; the
  same panels are checked against the real controller's scrape in
  tests/cluster/test_controller_metrics.py.
The controller-down alert gets a real scrape target that is down (a closed port).
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, push_to_gateway

from pipelines import render
from pipelines.config import load_config
from pipelines.config.loader import CONFIG_DIR
from pipelines.observability import alerts, panels
from pipelines.runner import api
from steps.common import metric_names as n
from tests.fixtures.prometheus import PromStack, free_port, start_prom_stack
from tests.fixtures.waiting import wait_until

ENV = "local"
FED_JOB = "kiosk-test-fed"
#: Panels whose series are pushed by this test (with the reason), not emitted by the run.
FED = {
    "GPU utilisation (infer pods)": "dcgm-exporter needs an NVIDIA GPU",
    "GPU memory used (infer pods)": "dcgm-exporter needs an NVIDIA GPU",
    "Workflow duration p50 / p95": "template metrics come from the workflow-controller, not the local runner",
    "Workflow outcomes": "template metrics come from the workflow-controller, not the local runner",
}
IMAGES = 24
pytestmark = pytest.mark.slow


def _config_dir(tmp: Path, gateway: str) -> Path:
    out = tmp / "config"
    out.mkdir()
    for path in CONFIG_DIR.glob("*.yaml"):
        (out / path.name).write_text(path.read_text())
    local = yaml.safe_load((out / "local.yaml").read_text())
    # One image in the run fails on purpose: the shard must not fail the workflow over it.
    local["pushgateway"] = gateway
    local.setdefault("inference", {})["max_failure_ratio"] = 0.5
    (out / "local.yaml").write_text(yaml.safe_dump(local))
    return out


def _run(name: str, files: list[Path], workdir: Path, **parameters: str) -> dict:
    workflow_run = api.prepare(name, env=None, files=files, parameters=parameters, workdir=workdir)
    workflow = workflow_run.run()
    assert workflow["status"]["phase"] == "Succeeded", (name, workflow["status"].get("message"), workflow_run.run_dir)
    return workflow


def _bad_inputs(uploads: Path) -> None:
    good = sorted(uploads.glob("synth-*.png"))[0].read_bytes()
    (uploads / "empty.png").write_bytes(b"")  # rejected at ingest
    (uploads / "truncated.png").write_bytes(good[:200])  # a valid header, then nothing: fails in infer


def _backdate(uploads: Path, days: int = 30) -> int:
    old = time.time() - days * 86400
    files = sorted(p for p in uploads.rglob("*") if p.is_file())[: IMAGES // 2]
    for path in files:
        os.utime(path, (old, old))
    return len(files)


def _feed(stack: PromStack, cfg, workflows: list[dict]) -> None:
    """Push, under their real names, the series this machine cannot produce (see FED).

    Called once before the runs with no workflow (the controller's series exist from earlier runs,
    at zero here) and once after, with the real runs' durations and phases: as the controller's
    counters would, they rise during the dashboard's range.
    """
    registry = CollectorRegistry()
    util = Gauge(n.DCGM_GPU_UTIL, "fed: GPU utilisation", ["namespace", "pod", "gpu"], registry=registry)
    used = Gauge(n.DCGM_FB_USED, "fed: frame buffer MiB", ["namespace", "pod", "gpu"], registry=registry)
    batch = [w for w in workflows if w["metadata"]["name"].startswith("batch-inference")]
    for workflow in batch:
        pod = f"{workflow['metadata']['name']}-infer-1234567890"
        util.labels(cfg.namespace, pod, "0").set(63)
        used.labels(cfg.namespace, pod, "0").set(2048)
    duration = Histogram(
        n.controller(n.WORKFLOW_DURATION),
        "fed: workflow duration",
        [n.TEMPLATE_LABEL, n.WORKFLOW_NAMESPACE_LABEL, n.STATUS_LABEL],
        buckets=(1, 5, 10, 30, 60, 120, 300, 600),
        registry=registry,
    )
    labels = [n.TEMPLATE_LABEL, n.WORKFLOW_NAMESPACE_LABEL]
    failures = Counter(n.controller(n.WORKFLOW_FAILURES), "fed: failures", labels, registry=registry)
    for template in ("batch-inference", "retention-cleanup", "synthetic-data"):
        duration.labels(template, cfg.namespace, "Succeeded")
    for workflow in workflows:
        status = workflow["status"]
        template = workflow["metadata"]["generateName"].rstrip("-")  # the runner names runs <template>-xxxxx
        started = _ts(status["startedAt"])
        duration.labels(template, cfg.namespace, status["phase"]).observe(_ts(status["finishedAt"]) - started)
        failures.labels(template, cfg.namespace).inc(0)
    push_to_gateway(stack.gateway, job=FED_JOB, registry=registry, timeout=10)


def _ts(text: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _api(stack: PromStack, path: str, **params: str) -> dict:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{stack.url}/api/v1/{path}?{query}", timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("live")
    cfg = load_config(ENV)
    rules = tmp / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": alerts.prometheus_rule(cfg)["spec"]["groups"]}))
    target = f"127.0.0.1:{free_port()}"  # nothing listens: the controller is down
    down = f"  - job_name: {cfg.observability.controller_job}\n    static_configs: [{{targets: ['{target}']}}]\n"
    with start_prom_stack(tmp, extra_scrape=down, rule_files=(rules,)) as stack:
        _feed(stack, cfg, [])
        stack.wait_for_data(n.controller(n.count(n.WORKFLOW_DURATION)))
        config_dir = _config_dir(tmp, stack.gateway)
        rendered = tmp / "rendered"
        files = []
        for rel, text in render.render_env(ENV, config_dir).items():
            path = rendered / rel.name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            files.append(path)
        assert any("--pushgateway=" in p.read_text() for p in files)
        workdir = tmp / "work"
        uploads = workdir / "store" / "uploads"
        synth = _run(
            "synthetic-data",
            files,
            workdir,
            **{"output-uri": f"file://{uploads}", "count": str(IMAGES), "width": "96", "height": "96"},
        )
        _bad_inputs(uploads)
        batch = _run("batch-inference", files, workdir)
        backdated = _backdate(uploads)
        cleanup = _run("retention-cleanup", files, workdir, **{"dry-run": "false", "older-than": "7d"})
        _feed(stack, cfg, [batch, cleanup, synth])
        run = batch["metadata"]["name"]
        # Every group is on the Pushgateway; wait until Prometheus scraped each of them twice, so
        # range functions over the last minutes have two samples to work with.
        for promql in (
            f'{n.INGEST_SHARDS}{{run="{run}"}}',
            f'{n.INFER_SHARD_SECONDS}{{run="{run}"}}',
            n.CLEANUP_LAST_SUCCESS,
            n.DCGM_GPU_UTIL,
            n.controller(n.count(n.WORKFLOW_DURATION)),
        ):
            stack.wait_for_samples(promql)
        yield {"stack": stack, "cfg": cfg, "run": run, "backdated": backdated, "uploads": uploads}


def substitute(expr: str, values: dict[str, str]) -> str:
    for name in sorted(values, key=len, reverse=True):  # $run before $r, were there one
        expr = expr.replace(f"${name}", values[name])
    assert "$" not in expr, expr
    return expr


def variable_values(live) -> dict[str, str]:
    boards = panels.all_dashboards(live["cfg"])
    values = {v.name: v.value for d in boards for v in d.variables if v.kind == "constant"}
    defaults = {v.name: v.default for d in boards for v in d.variables if v.kind == "query" and v.default}
    assert defaults == {n.ENV_LABEL: ENV}  # the steps pushed with the env their templates name
    # The run picked in the dashboard, the default store (All) and dry-run choice, Grafana's range.
    return {**values, **defaults, "run": live["run"], "store": ".*", "dry_run": "false", "__range": "5m"}


def _panels() -> list[tuple[str, str, panels.Query]]:
    cfg = load_config(ENV)
    return [(d.title, p.title, q) for d in panels.all_dashboards(cfg) for p in d.panels for q in p.queries]


@pytest.mark.parametrize(("board", "panel", "query"), _panels(), ids=lambda v: getattr(v, "legend", v))
def test_panel_query_returns_data(live, board: str, panel: str, query: panels.Query) -> None:
    expr = substitute(query.expr, variable_values(live))
    result = live["stack"].query(expr)
    assert result, f"{board} / {panel}: no data for {expr}"
    for series in result:
        assert series["value"][1] not in ("NaN", "+Inf", "-Inf"), (panel, series)


def test_fed_panels_are_exactly_the_ones_that_need_it() -> None:
    cfg = load_config(ENV)
    external = {p.title for d in panels.all_dashboards(cfg) for p in d.panels if p.source != "steps"}
    assert external == set(FED)


def test_the_run_is_what_prometheus_shows(live) -> None:
    stack, run = live["stack"], live["run"]
    assert float(stack.query(f'sum({n.counter(n.INFER_ITEMS)}{{run="{run}", status="failed"}})')[0]["value"][1]) == 1
    assert float(stack.query(f'max({n.INGEST_REJECTED}{{run="{run}"}})')[0]["value"][1]) == 1
    shards = float(stack.query(f'max({n.INGEST_SHARDS}{{run="{run}"}})')[0]["value"][1])
    done = float(stack.query(f'count({n.INFER_SHARD_SECONDS}{{run="{run}"}})')[0]["value"][1])
    assert shards == done >= 2
    deleted = stack.query(f'sum({n.CLEANUP_DELETED}{{dry_run="false"}})')
    assert float(deleted[0]["value"][1]) == live["backdated"]


def test_variable_queries_list_the_run_and_store(live) -> None:
    stack = live["stack"]
    runs = _api(stack, "label/run/values", **{"match[]": n.counter(n.INFER_ITEMS)})["data"]
    assert live["run"] in runs
    stores = _api(stack, "label/store/values", **{"match[]": n.CLEANUP_LAST_RUN})["data"]
    assert stores and all(s.startswith("file://") for s in stores)


@pytest.mark.parametrize("alert", [a.name for a in alerts.alerts(load_config(ENV))])
def test_alert_expression_evaluates(live, alert: str) -> None:
    rule = next(a for a in alerts.alerts(live["cfg"]) if a.name == alert)
    answer = _api(live["stack"], "query", query=rule.expr)
    assert answer["status"] == "success", answer


def _rules(live) -> dict[str, dict]:
    return {r["name"]: r for g in _api(live["stack"], "rules")["data"]["groups"] for r in g["rules"]}


def test_prometheus_loaded_and_evaluated_every_rule(live) -> None:
    names = {a.name for a in alerts.alerts(live["cfg"])}

    def evaluated() -> dict[str, dict] | None:
        loaded = _rules(live)
        return (
            loaded
            if set(loaded) == names and all(r.get("lastEvaluation", "").startswith("20") for r in loaded.values())
            else None
        )

    loaded = wait_until(evaluated, 60, "Prometheus to load and evaluate every alert rule", poll=0.5)
    assert set(loaded) == names
    health = {name: (r["health"], r.get("lastError", "")) for name, r in loaded.items()}
    assert health == dict.fromkeys(loaded, ("ok", ""))
