"""The PrometheusRule with kiosk's alerts; thresholds from config (`observability.alerts`).

Pushed series stay on the Pushgateway until deleted, so the per-run alerts only look at groups
pushed within `alerts.recent` (the Pushgateway's own `push_time_seconds`), not at every run ever.
Each env's rules select the series its own steps pushed (`env="<name>"`): envs may share a
Pushgateway, and one env's failing run must not page for another.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from pipelines.config import KioskConfig
from pipelines.observability import schedule
from steps.common import metric_names as n
from steps.common.durations import PROMETHEUS, parse_duration

GROUP = "kiosk"
RUNBOOK = "https://github.com/kiosk-pipelines/kiosk-pipelines/blob/main/docs/observability.md#alerts"


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str


def _promql_duration(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def retention_period(cfg: KioskConfig) -> timedelta:
    explicit = cfg.observability.alerts.retention_period
    return parse_duration(explicit) if explicit else schedule.union_period(cfg.retention.cron.schedules)


def _new_or_increased(series: str, window: str) -> str:
    """A counter that rose within `window`, counting a series that first appeared in it.

    `increase()` needs two samples, so the first failure (a counter born at 1) would be missed.
    """
    return f"(increase({series}[{window}]) > 0) or ({series} unless {series} offset {window})"


def alerts(cfg: KioskConfig) -> list[Alert]:
    return [*_inference_alerts(cfg), *_retention_alerts(cfg), *_platform_alerts(cfg)]


def _inference_alerts(cfg: KioskConfig) -> list[Alert]:
    """Batch runs that failed, as workflows or image by image."""
    a = cfg.observability.alerts
    template = f'{{{n.TEMPLATE_LABEL}="batch-inference", {n.WORKFLOW_NAMESPACE_LABEL}="{cfg.namespace}"}}'
    failures = n.controller(n.WORKFLOW_FAILURES) + template
    env = _env(cfg)
    recent_infer = (
        f'max by ({n.RUN_LABEL}) ({n.PUSH_TIME}{{{env}, job="{n.INFER_JOB}"}}) > time() - {_seconds(a.recent)}'
    )
    items = n.counter(n.INFER_ITEMS)
    ratio = (
        f'sum by ({n.RUN_LABEL}) ({items}{{{env}, {n.STATUS_LABEL}="failed"}})'
        f' / sum by ({n.RUN_LABEL}) ({items}{{{env}, {n.STATUS_LABEL}=~"ok|failed"}})'
    )
    return [
        Alert(
            "KioskBatchRunFailed",
            _new_or_increased(failures, "10m"),
            "0m",
            "warning",
            "A batch-inference workflow failed",
            "batch-inference ended Failed or Error in the last 10 minutes ({{ $labels.workflow_template }}). "
            "Look at the workflow in the Argo UI and its run summary.",
        ),
        Alert(
            "KioskFailureRatioHigh",
            f"({ratio}) > {a.failure_ratio:g} and on ({n.RUN_LABEL}) ({recent_infer})",
            "0m",
            "warning",
            "Too many images failed in a run",
            f"Run {{{{ $labels.run }}}}: {{{{ $value | humanizePercentage }}}} of its images failed "
            f"(threshold {a.failure_ratio:.0%}, observability.alerts.failure_ratio).",
        ),
    ]


def _retention_alerts(cfg: KioskConfig) -> list[Alert]:
    """Retention cleanup that stopped succeeding, or refused to delete (--max-deletes)."""
    a = cfg.observability.alerts
    missed = retention_period(cfg) * a.retention_missed_periods
    # Each environment cleans its own store; a store URI with a variable ($KIOSK_WORKDIR) is only
    # known at run time, so that environment's rules take every store.
    store = f"{_env(cfg)}, " + ("" if "$" in cfg.storage.uri else f'{n.STORE_LABEL}="{cfg.storage.uri}", ')
    success = f'{n.CLEANUP_LAST_SUCCESS}{{{store}{n.DRY_RUN_LABEL}="false"}}'
    aborted = f"{{{store.removesuffix(', ')}}}"
    return [
        Alert(
            "KioskRetentionNotSucceeding",
            f"(time() - max by ({n.STORE_LABEL}) ({success}) > {int(missed.total_seconds())})"
            f" or absent_over_time({success}[{_promql_duration(missed)}])",
            # The second half covers a store that never succeeded (or a cron that never ran): no
            # success sample in the whole window. No `for`: the window is the wait.
            "0m",
            "warning",
            "No successful retention run",
            f"No retention-cleanup run (dry_run=false) ended with exit code 0 for {a.retention_missed_periods} "
            f"schedule periods ({_promql_duration(missed)}) on {{{{ $labels.store }}}}.",
        ),
        Alert(
            "KioskCleanupAborted",
            f"max by ({n.STORE_LABEL}) ({n.CLEANUP_ABORTED}{aborted}) == 1",
            "0m",
            "warning",
            "Retention cleanup aborted on --max-deletes",
            f"The last retention-cleanup of {{{{ $labels.store }}}} would have deleted more than "
            f"--max-deletes={cfg.retention.max_deletes} objects and deleted nothing. Check the prefixes and "
            "threshold, then raise retention.max_deletes or run it by hand.",
        ),
    ]


def _platform_alerts(cfg: KioskConfig) -> list[Alert]:
    """What every run stands on: the GPUs it holds and the workflow-controller."""
    a, obs = cfg.observability.alerts, cfg.observability
    gpu = f'{n.DCGM_GPU_UTIL}{{namespace="{cfg.namespace}", pod=~"{obs.infer_pod_regex}"}}'
    return [
        Alert(
            "KioskGpuIdle",
            f"avg by (namespace, pod) ({gpu}) < {a.gpu_idle_percent:g}",
            a.gpu_idle_for,
            "info",
            "An infer pod's GPU is idle",
            f"{{{{ $labels.pod }}}} holds a GPU at under {a.gpu_idle_percent:g}% utilisation for "
            f"{a.gpu_idle_for}: the pod is starved (storage, decode) or stuck. dcgm-exporter only labels GPUs "
            "with the pods that hold them, so a series here means the pod is running.",
        ),
        Alert(
            "KioskWorkflowControllerDown",
            f'absent({n.UP}{{job="{obs.controller_job}"}} == 1)',
            a.controller_down_for,
            "critical",
            "The Argo workflow-controller is down",
            f"No healthy scrape of job {obs.controller_job} for {a.controller_down_for}: no workflow, "
            "CronWorkflow or retry makes progress.",
        ),
    ]


def _env(cfg: KioskConfig) -> str:
    """The matcher of the series this env's steps pushed (`env=""`: those pushed without an env)."""
    return f'{n.ENV_LABEL}="{cfg.env}"'


def _seconds(duration: str) -> int:
    return int(parse_duration(duration, PROMETHEUS).total_seconds())


def rule_groups(cfg: KioskConfig) -> list[dict[str, Any]]:
    """Prometheus' rule-file `groups:` (what `promtool check rules` reads)."""
    rules = []
    for alert in alerts(cfg):
        rule: dict[str, Any] = {"alert": alert.name, "expr": alert.expr}
        if alert.for_ != "0m":
            rule["for"] = alert.for_
        rule["labels"] = {"severity": alert.severity, "namespace": cfg.namespace}
        rule["annotations"] = {
            "summary": alert.summary,
            "description": alert.description,
            "runbook_url": f"{RUNBOOK}-{alert.name.lower()}",
        }
        rules.append(rule)
    return [{"name": f"{GROUP}-{cfg.namespace}", "rules": rules}]


def prometheus_rule(cfg: KioskConfig) -> dict[str, Any]:
    obs = cfg.observability
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "kiosk-alerts",
            "namespace": cfg.namespace,
            "labels": {**obs.rule_labels, "app.kubernetes.io/part-of": "kiosk"},
        },
        "spec": {"groups": rule_groups(cfg)},
    }
