"""The rendered alert rules under `promtool check rules` and `promtool test rules`.

Every alert has series that fire it and series that do not, evaluated by Prometheus' own rule
engine (promtool). Expected labels and annotations are written out in full: promtool compares both.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from pipelines.config import ENVIRONMENTS, load_config
from pipelines.observability import alerts
from tests.fixtures.tools import require_tool

ENV = "dev"  # the unit tests' thresholds: dev's config
CFG = load_config(ENV)
NS = CFG.namespace
POD = "batch-inference-x7k2p-infer-1234567890"


def write_rules(tmp_path: Path, env: str = ENV) -> Path:
    path = tmp_path / f"rules-{env}.yaml"
    path.write_text(yaml.safe_dump({"groups": alerts.prometheus_rule(load_config(env))["spec"]["groups"]}))
    return path


def _expand(template: str, labels: dict[str, str], value: str) -> str:
    """Prometheus' annotation templating, for the two forms our rules use."""
    text = re.sub(r"\{\{ \$labels\.(\w+) \}\}", lambda m: labels.get(m.group(1), ""), template)
    return text.replace("{{ $value | humanizePercentage }}", value)


def expected(name: str, labels: dict[str, str], value: str = "") -> dict:
    rule = next(a for a in alerts.alerts(CFG) if a.name == name)
    full = {**labels, "severity": rule.severity, "namespace": NS}
    return {
        "exp_labels": full,
        "exp_annotations": {
            "summary": rule.summary,
            "description": _expand(rule.description, labels, value),
            "runbook_url": f"{alerts.RUNBOOK}-{name.lower()}",
        },
    }


def case(alert: str, eval_time: str, series: dict[str, str], fired: list[dict], interval: str = "1m") -> dict:
    return {
        "interval": interval,
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [{"eval_time": eval_time, "alertname": alert, "exp_alerts": fired}],
    }


FAILURES = 'argo_workflows_kiosk_workflow_failures_total{workflow_template="%s", workflow_namespace="%s"}'
# Pushed series carry their env (dev's rules, dev's series); `_in_prod` moves a case's series to prod.
ITEMS = 'kiosk_infer_items_total{env="dev", run="%s", status="%s"}'
PUSHED = 'push_time_seconds{env="dev", job="kiosk_infer", run="%s", shard="shard-00000"}'
SUCCESS = (
    'kiosk_cleanup_last_success_timestamp_seconds{env="dev", store="s3://kiosk-data-dev", dry_run="%s", last="success"}'
)
ABORTED = 'kiosk_cleanup_aborted{env="%s", store="s3://kiosk-data-%s"}'
GPU = 'DCGM_FI_DEV_GPU_UTIL{namespace="%s", pod="%s", gpu="0"}'
UP = 'up{job="%s"}'
STORE = {"store": "s3://kiosk-data-dev"}


def _in_prod(series: dict[str, str]) -> dict[str, str]:
    return {s.replace('env="dev"', 'env="prod"'): v for s, v in series.items()}


BAD_RUN = {ITEMS % ("r1", "failed"): "10x10", ITEMS % ("r1", "ok"): "90x10", PUSHED % "r1": "0x10"}

CASES = {
    "KioskBatchRunFailed": [
        # The first failure creates the counter at 1: increase() alone would miss it.
        case(
            "KioskBatchRunFailed",
            "7m",
            {FAILURES % ("batch-inference", NS): "_x5 1x10"},
            [expected("KioskBatchRunFailed", {"workflow_template": "batch-inference", "workflow_namespace": NS})],
        ),
        case(
            "KioskBatchRunFailed",
            "25m",
            {FAILURES % ("batch-inference", NS): "1x20 2x10"},
            [expected("KioskBatchRunFailed", {"workflow_template": "batch-inference", "workflow_namespace": NS})],
        ),
        # An old failure, and another template's, do not page.
        case(
            "KioskBatchRunFailed",
            "25m",
            {
                FAILURES % ("batch-inference", NS): "1x30",
                FAILURES % ("benchmark", NS): "_x20 1x10",
                FAILURES % ("batch-inference", "kiosk-prod"): "_x20 1x10",  # another environment's
            },
            [],
        ),
    ],
    "KioskFailureRatioHigh": [
        case(
            "KioskFailureRatioHigh",
            "5m",
            {
                ITEMS % ("r1", "failed"): "10x10",
                ITEMS % ("r1", "ok"): "90x10",
                PUSHED % "r1": "0x10",
                ITEMS % ("r2", "failed"): "1x10",  # 1%: under the threshold
                ITEMS % ("r2", "ok"): "99x10",
                PUSHED % "r2": "0x10",
            },
            [expected("KioskFailureRatioHigh", {"run": "r1"}, "10%")],
        ),
        # The same bad run pushed more than `alerts.recent` (6h) ago no longer alerts.
        case(
            "KioskFailureRatioHigh",
            "7h",
            BAD_RUN,
            [],
            interval="1h",
        ),
        case("KioskFailureRatioHigh", "5m", _in_prod(BAD_RUN), []),  # another env's run, same name
    ],
    "KioskRetentionNotSucceeding": [
        # Last success at t=0; the schedule (0 3 * * *) is daily, so 2 periods = 48h.
        case(
            "KioskRetentionNotSucceeding",
            "49h",
            {SUCCESS % "false": "0x60"},
            [expected("KioskRetentionNotSucceeding", STORE)],
            interval="1h",
        ),
        case("KioskRetentionNotSucceeding", "47h", {SUCCESS % "false": "0x60"}, [], interval="1h"),
        # Only dry runs ever succeeded: they do not count.
        case(
            "KioskRetentionNotSucceeding",
            "1h",
            {SUCCESS % "true": "0x60"},
            [expected("KioskRetentionNotSucceeding", {**STORE, "dry_run": "false", "env": "dev"})],
            interval="1h",
        ),
    ],
    "KioskCleanupAborted": [
        case(
            "KioskCleanupAborted",
            "2m",
            {ABORTED % ("dev", "dev"): "1x5"},
            [expected("KioskCleanupAborted", STORE)],
        ),
        case("KioskCleanupAborted", "2m", {ABORTED % ("dev", "dev"): "0x5"}, []),
        case("KioskCleanupAborted", "2m", {ABORTED % ("dev", "prod"): "1x5"}, []),
        case("KioskCleanupAborted", "2m", {ABORTED % ("prod", "dev"): "1x5"}, []),  # another env's push
    ],
    "KioskGpuIdle": [
        case(
            "KioskGpuIdle", "20m", {GPU % (NS, POD): "5x30"}, [expected("KioskGpuIdle", {"namespace": NS, "pod": POD})]
        ),
        case("KioskGpuIdle", "10m", {GPU % (NS, POD): "5x30"}, []),  # idle, but not for 15m yet
        case("KioskGpuIdle", "20m", {GPU % (NS, POD): "55x30"}, []),  # busy
        case("KioskGpuIdle", "20m", {GPU % (NS, "serving-7d9f-abcde"): "0x30"}, []),  # not an infer pod
        case("KioskGpuIdle", "20m", {GPU % ("kiosk-prod", POD): "0x30"}, []),  # another environment's
    ],
    "KioskWorkflowControllerDown": [
        case(
            "KioskWorkflowControllerDown",
            "10m",
            {UP % "workflow-controller-metrics": "0x15"},
            [expected("KioskWorkflowControllerDown", {})],
        ),
        case(
            "KioskWorkflowControllerDown",
            "10m",
            {UP % "pushgateway": "1x15"},
            [expected("KioskWorkflowControllerDown", {})],
        ),  # never scraped at all
        case("KioskWorkflowControllerDown", "3m", {UP % "workflow-controller-metrics": "0x15"}, []),  # not 5m yet
        case("KioskWorkflowControllerDown", "10m", {UP % "workflow-controller-metrics": "1x15"}, []),
    ],
}


def test_every_alert_has_cases_that_fire_and_cases_that_do_not() -> None:
    assert set(CASES) == {a.name for a in alerts.alerts(CFG)}
    for name, cases in CASES.items():
        outcomes = {bool(t["exp_alerts"]) for c in cases for t in c["alert_rule_test"]}
        assert outcomes == {True, False}, name


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_promtool_check_rules(env: str, tmp_path: Path) -> None:
    promtool = require_tool("promtool")
    proc = subprocess.run(
        [str(promtool), "check", "rules", str(write_rules(tmp_path, env))], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"SUCCESS: {len(alerts.alerts(load_config(env)))} rules found" in proc.stdout


def run_unit_tests(tmp_path: Path, tests: list[dict]) -> subprocess.CompletedProcess[str]:
    promtool = require_tool("promtool")
    spec = tmp_path / "alerts_test.yaml"
    spec.write_text(
        yaml.safe_dump({"rule_files": [str(write_rules(tmp_path))], "evaluation_interval": "1m", "tests": tests})
    )
    return subprocess.run([str(promtool), "test", "rules", str(spec)], capture_output=True, text=True, check=False)


def test_promtool_unit_tests_pass(tmp_path: Path) -> None:
    proc = run_unit_tests(tmp_path, [c for cases in CASES.values() for c in cases])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_a_wrong_expectation_fails(tmp_path: Path) -> None:
    # The harness can fail: expecting the idle alert on a busy GPU is reported by promtool.
    wrong = case(
        "KioskGpuIdle", "20m", {GPU % (NS, POD): "55x30"}, [expected("KioskGpuIdle", {"namespace": NS, "pod": POD})]
    )
    proc = run_unit_tests(tmp_path, [wrong])
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr
