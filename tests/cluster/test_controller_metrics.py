"""The real workflow-controller's metrics, scraped by a real Prometheus during a real run.

The dashboards' workflow panels read template metrics that only the controller emits (the local
runner's live test, tests/observability/test_prometheus_live.py, has to push them). Here Prometheus
scrapes the controller of the session cluster, on the 127.0.0.1 port `kiosk cluster` gave it, while
the controller runs the rendered `synthetic-data` template; then each controller panel's query must
return that run, and the controller-down alert must be quiet while the controller is up.
"""

from __future__ import annotations

import pytest

from pipelines.cluster import controlplane
from pipelines.config import load_config
from pipelines.observability import alerts, panels
from steps.common import metric_names as n
from tests.cluster.conftest import NAMESPACE, Cluster
from tests.fixtures.prometheus import start_prom_stack

ENV = "local"
TEMPLATE = "synthetic-data"


def _controller_panels() -> list[tuple[str, panels.Query]]:
    cfg = load_config(ENV)
    return [
        (p.title, q)
        for d in panels.all_dashboards(cfg)
        for p in d.panels
        if p.source == "controller"
        for q in p.queries
    ]


@pytest.fixture(scope="module")
def scraped(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory):
    cfg = load_config(ENV)
    url = controlplane.metrics_url(cluster.state)
    target = url.removeprefix("http://").split("/", 1)[0]
    job = f"  - job_name: {cfg.observability.controller_job}\n    static_configs: [{{targets: ['{target}']}}]\n"
    with start_prom_stack(tmp_path_factory.mktemp("controller-metrics"), extra_scrape=job) as stack:
        stack.wait_for_data(f'up{{job="{cfg.observability.controller_job}"}} == 1')
        uri = "file://$KIOSK_WORKDIR/store/uploads/metrics-case"
        workflow = cluster.submit_template(TEMPLATE, {"output-uri": uri, "count": "2", "width": "64", "height": "64"})
        assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")
        labels = (
            f'{n.TEMPLATE_LABEL}="{TEMPLATE}", {n.WORKFLOW_NAMESPACE_LABEL}="{NAMESPACE}", {n.STATUS_LABEL}="Succeeded"'
        )
        stack.wait_for_samples(f"{n.controller(n.count(n.WORKFLOW_DURATION))}{{{labels}}}")  # increase() needs two
        yield stack, cfg


@pytest.mark.parametrize(("panel", "query"), _controller_panels(), ids=lambda v: getattr(v, "legend", v))
def test_controller_panel_shows_the_run(scraped, panel: str, query: panels.Query) -> None:
    stack, cfg = scraped
    expr = query.expr.replace("$namespace", cfg.namespace).replace("$__range", "10m")
    assert "$" not in expr, expr
    result = stack.query(expr)
    templates = {series["metric"].get(n.TEMPLATE_LABEL) for series in result}
    assert TEMPLATE in templates, f"{panel}: {expr} gave {result}"


def test_controller_down_alert_is_quiet_while_it_runs(scraped) -> None:
    stack, cfg = scraped
    assert float(stack.query(f'up{{job="{cfg.observability.controller_job}"}}')[0]["value"][1]) == 1
    down = next(a for a in alerts.alerts(cfg) if "Controller" in a.name)
    assert stack.query(down.expr) == [], down.expr
