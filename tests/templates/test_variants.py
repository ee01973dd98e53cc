"""Config branches the committed environments do not exercise: MinIO endpoint, IRSA, Pushgateway."""

from __future__ import annotations

import shutil
from typing import Any

import pytest
import yaml

from pipelines import render
from pipelines.config.loader import CONFIG_DIR


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    config_dir = tmp_path_factory.mktemp("config")
    shutil.copytree(CONFIG_DIR, config_dir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    overlay = yaml.safe_load((config_dir / "staging.yaml").read_text())
    overlay["storage"].update(s3_endpoint="http://minio.minio:9000", credentials_secret="")
    overlay["pushgateway"] = "pushgateway.monitoring:9091"
    overlay["benchmark"] = {"prometheus_url": "http://prometheus.monitoring:9090", "prometheus_lag_seconds": 30}
    # what a user tunes in config, not in code: retry backoff, /tmp size, cron history
    overlay.setdefault("workflow", {}).update(
        retry_backoff={"duration": "10s", "factor": 3, "cap": "2m", "max_duration": "20m"}, tmp_size_limit="8Gi"
    )
    overlay["batch_cron"] = {**overlay.get("batch_cron", {}), "successful_jobs_history_limit": 5}
    (config_dir / "staging.yaml").write_text(yaml.safe_dump(overlay))
    files = render.render_env("staging", config_dir)
    return {path.name: yaml.safe_load(text) for path, text in files.items()}


def containers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {t["name"]: t["container"] for t in doc["spec"]["templates"] if "container" in t}


def test_endpoint_reaches_every_step_and_no_static_credentials(rendered: dict[str, dict[str, Any]]) -> None:
    steps = [
        (step, c)
        for name, doc in rendered.items()
        if name.startswith("workflowtemplate-")
        for step, c in containers(doc).items()
    ]
    assert {step for step, _ in steps} == {
        "ingest",
        "infer",
        "report",
        "cleanup",
        "synth",
        "benchmark",
        "publish-model",
    }
    for _, container in steps:
        assert "--s3-endpoint=http://minio.minio:9000" in container["args"]
        names = {e["name"] for e in container.get("env", [])}
        assert "AWS_ACCESS_KEY_ID" not in names and "AWS_SECRET_ACCESS_KEY" not in names


def test_artifact_repository_uses_the_endpoint_and_pod_identity(rendered: dict[str, dict[str, Any]]) -> None:
    config_map = rendered["configmap-artifact-repositories.yaml"]
    s3 = yaml.safe_load(config_map["data"]["default-v1"])["s3"]
    assert s3["endpoint"] == "minio.minio:9000" and s3["insecure"] is True
    assert s3["useSDKCreds"] is True and "accessKeySecret" not in s3


def test_pushgateway_and_prometheus_are_passed(rendered: dict[str, dict[str, Any]]) -> None:
    infer = containers(rendered["workflowtemplate-batch-inference.yaml"])["infer"]
    assert "--pushgateway=pushgateway.monitoring:9091" in infer["args"]
    cleanup = containers(rendered["workflowtemplate-retention-cleanup.yaml"])["cleanup"]
    assert "--pushgateway=pushgateway.monitoring:9091" in cleanup["args"]
    assert "--prune-metrics-older-than=14d" in cleanup["args"]  # batch runs' groups, by the base config
    bench = containers(rendered["workflowtemplate-benchmark.yaml"])["benchmark"]
    assert "--prometheus-url=http://prometheus.monitoring:9090" in bench["args"]
    assert "--prometheus-lag-seconds=30.0" in bench["args"]


def test_retry_backoff_tmp_size_and_history_limits_come_from_config(rendered: dict[str, dict[str, Any]]) -> None:
    template = rendered["workflowtemplate-batch-inference.yaml"]
    assert template["spec"]["volumes"] == [{"name": "tmp", "emptyDir": {"sizeLimit": "8Gi"}}]
    for container_template in (t for t in template["spec"]["templates"] if "container" in t):
        backoff = container_template["retryStrategy"]["backoff"]
        assert backoff == {"duration": "10s", "factor": "3", "cap": "2m", "maxDuration": "20m"}
    cron = rendered["cronworkflow-batch-inference.yaml"]["spec"]
    assert (cron["successfulJobsHistoryLimit"], cron["failedJobsHistoryLimit"]) == (5, 3)
