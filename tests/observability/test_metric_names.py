"""Every metric a dashboard panel or alert reads is one an emitter really produces.

The names are read back from the emitters' real registries (steps.infer, steps.ingest,
steps.cleanup) and from the template metrics in the rendered WorkflowTemplates, so renaming a
metric in any emitter, or in `steps.common.metric_names` without the emitter, fails here instead
of silently emptying a panel.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry

from pipelines.config import ENVIRONMENTS, load_config
from pipelines.observability import alerts, panels
from pipelines.tools import REPO_ROOT
from steps.cleanup import metrics as cleanup_metrics
from steps.cleanup.report import PrefixReport, Report
from steps.common import metric_names as n
from steps.infer.metrics import Metrics
from steps.infer.pipeline import ItemResult
from steps.ingest import metrics as ingest_metrics

#: Series kiosk reads but does not emit: NVIDIA's dcgm-exporter, Prometheus' scrape health and the
#: Pushgateway's own per-group push time.
EXTERNAL = {n.DCGM_GPU_UTIL, n.DCGM_FB_USED, n.UP, n.PUSH_TIME}
PROMQL_WORDS = {
    "sum", "max", "min", "avg", "count", "by", "on", "without", "ignoring", "and", "or", "unless", "offset",
    "group_left", "histogram_quantile", "increase", "rate", "time", "absent", "absent_over_time", "le", "bool",
}  # fmt: skip


def referenced(expr: str) -> set[str]:
    """Metric names in a PromQL expression (label matchers, groupings, ranges and strings removed)."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", text)
    text = re.sub(r"\b(by|on|without|ignoring)\s*\([^)]*\)", "", text)
    text = re.sub(r"\$\w+|\b\d+(\.\d+)?[a-z]*\b", "", text)  # variables, numbers, durations (`offset 10m`)
    text = re.sub(r"\blabel_values\(([^,)]*),[^)]*\)", r"\1", text)  # a variable's query: its metric
    return {t for t in re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*", text) if t not in PROMQL_WORDS}


def samples(registry: CollectorRegistry) -> set[str]:
    return {s.name for family in registry.collect() for s in family.samples}


def emitted() -> set[str]:
    infer = Metrics("shard-00000", ["CPUExecutionProvider"], run="run-1")
    infer.record(ItemResult(key="a.png", status="ok", latency_s=0.1, stages={"infer": 0.05}))
    infer.record_batch(1, 0.05)
    infer.record_requests({"get": 1, "put": 1})
    report = Report(
        store="file:///s",
        older_than="7d",
        cutoff="",
        dry_run=False,
        max_deletes=1,
        per_prefix={"uploads/": PrefixReport()},
    )
    names = samples(infer.registry) | samples(ingest_metrics.registry_for(1, 2, 3))
    names |= samples(cleanup_metrics.registry_for(report)) | samples(cleanup_metrics.success_registry(report))
    return names | controller_emitted()


def controller_emitted() -> set[str]:
    """Template metrics of the rendered WorkflowTemplates, as the workflow-controller exposes them."""
    found: set[str] = set()
    for path in (REPO_ROOT / "argocd" / "workflows").glob("*/workflowtemplate-*.yaml"):
        text = path.read_text()
        for doc in yaml.safe_load_all(text):
            for metric in _metrics(doc):
                base = n.controller(metric["name"])
                found |= {f"{base}_bucket", f"{base}_sum", f"{base}_count"} if "histogram" in metric else {base}
    return found


def _metrics(node: object) -> list[dict]:
    if isinstance(node, dict):
        own = list((node.get("metrics") or {}).get("prometheus") or []) if isinstance(node.get("metrics"), dict) else []
        return own + [m for v in node.values() for m in _metrics(v)]
    if isinstance(node, list):
        return [m for v in node for m in _metrics(v)]
    return []


def all_exprs(env: str) -> list[tuple[str, str]]:
    cfg = load_config(env)
    found = [
        (f"{d.title} / {p.title}", q.expr) for d in panels.all_dashboards(cfg) for p in d.panels for q in p.queries
    ]
    found += [
        (f"{d.title} / variable {v.name}", v.value)
        for d in panels.all_dashboards(cfg)
        for v in d.variables
        if v.kind == "query"
    ]
    return found + [(f"alert {a.name}", a.expr) for a in alerts.alerts(cfg)]


def unknown_names(exprs: list[tuple[str, str]], known: set[str]) -> list[tuple[str, str]]:
    return [(where, name) for where, expr in exprs for name in sorted(referenced(expr)) if name not in known]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_name_read_is_emitted(env: str) -> None:
    assert unknown_names(all_exprs(env), emitted() | EXTERNAL) == []


def test_the_check_sees_a_renamed_emitter() -> None:
    known = emitted()
    assert "kiosk_infer_items_total" in known and "argo_workflows_kiosk_workflow_duration_seconds_bucket" in known
    renamed = (known - {"kiosk_cleanup_deleted_bytes"}) | {"kiosk_cleanup_bytes_deleted"} | EXTERNAL
    assert ("Retention (kiosk-dev) / Deleted bytes per prefix", "kiosk_cleanup_deleted_bytes") in unknown_names(
        all_exprs("dev"), renamed
    )


def test_every_panel_and_alert_reads_some_metric() -> None:
    for where, expr in all_exprs("dev"):
        assert referenced(expr), where


def test_extracting_names_from_promql() -> None:
    expr = 'histogram_quantile(0.5, sum by (le, run) (kiosk_infer_item_latency_seconds_bucket{run=~"$run"}))'
    assert referenced(expr) == {"kiosk_infer_item_latency_seconds_bucket"}
    assert referenced('time() - max by (store) (a_b{x="y"}) > 3 or absent_over_time(c[2d])') == {"a_b", "c"}


def test_emitters_use_the_shared_module() -> None:
    # No metric name literal left in the emitters: they must come from steps.common.metric_names.
    for path in [*Path(REPO_ROOT / "steps").glob("*/metrics.py"), REPO_ROOT / "pipelines/templates/_common.py"]:
        assert not re.search(r'["\']kiosk_[a-z_]+["\']', path.read_text()), path
