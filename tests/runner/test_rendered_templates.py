"""Every rendered template of ours runs end to end locally: file store, and once against S3 (moto).

Cases are discovered from `argocd/workflows/local/` (written by `kiosk render`). A step that still
answers "not implemented" (exit code 3) fails its case, naming the step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import demo
from pipelines.config import load_config
from pipelines.runner import api
from pipelines.runner.loading import RUNNABLE, env_tree
from tests.fixtures.s3 import S3Bucket

#: Rendered retry backoffs are minutes long (cluster values); the semantics are tested elsewhere.
BACKOFF = 0.001
RENDERED = sorted(
    (path, doc["metadata"]["name"])
    for path in env_tree("local").glob("*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") in RUNNABLE and doc.get("kind") != "Workflow"
)


def _check(workflow_run: Any, workflow: dict[str, Any]) -> None:
    missing = demo._missing_steps(workflow, workflow_run.run_dir)
    assert not missing, "; ".join(missing)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")


def _upload_dir(workdir: Path) -> Path:
    cfg = load_config("local")
    return Path(cfg.storage.uri.replace("$KIOSK_WORKDIR", str(workdir)).removeprefix("file://")) / (
        cfg.inference.input_prefix
    )


@pytest.mark.parametrize(("path", "name"), RENDERED, ids=[n for _, n in RENDERED])
def test_rendered_template_runs_on_the_file_store(path: Path, name: str, tmp_path: Path) -> None:
    _upload_dir(tmp_path).mkdir(parents=True)  # an empty upload directory: nothing to do, and that is fine
    workflow_run = api.prepare(str(path), env="local", workdir=tmp_path, backoff_scale=BACKOFF)
    _check(workflow_run, workflow_run.run())


def test_a_name_means_the_workflow_template_and_a_kind_prefix_picks_the_cron(tmp_path: Path) -> None:
    cron_label = "workflows.argoproj.io/cron-workflow"
    assert cron_label not in api.prepare("batch-inference", workdir=tmp_path).workflow["metadata"]["labels"]
    cron = api.prepare("cronworkflow/batch-inference", workdir=tmp_path)
    assert cron.workflow["metadata"]["labels"][cron_label] == "batch-inference"
    template = api.prepare("workflowtemplate/batch-inference", workdir=tmp_path)
    assert template.globals["workflow.parameters.missing-input"] == "error"
    assert cron.globals["workflow.parameters.missing-input"] == "empty"


def _ingest_node(workflow: dict[str, Any]) -> dict[str, Any]:
    (node,) = [n for n in workflow["status"]["nodes"].values() if n["templateName"] == "ingest" and n["type"] == "Pod"]
    return node


def test_a_manual_run_of_a_missing_input_directory_fails_at_ingest(tmp_path: Path) -> None:
    workflow = api.prepare("batch-inference", env="local", workdir=tmp_path, backoff_scale=BACKOFF).run()
    assert workflow["status"]["phase"] == "Failed"
    ingest = _ingest_node(workflow)
    assert ingest["outputs"]["exitCode"] == "2"
    log = (tmp_path / "runs" / workflow["metadata"]["name"] / "logs" / f"{ingest['id']}.log").read_text()
    assert f"{_upload_dir(tmp_path)} does not exist" in log


def test_the_cron_finds_nothing_new_in_a_missing_input_directory(tmp_path: Path) -> None:
    workflow_run = api.prepare("cronworkflow/batch-inference", env="local", workdir=tmp_path, backoff_scale=BACKOFF)
    workflow = workflow_run.run()
    _check(workflow_run, workflow)
    assert _ingest_node(workflow)["outputs"]["exitCode"] == "0"


@pytest.mark.parametrize(("path", "name"), RENDERED[:1], ids=[n for _, n in RENDERED[:1]])
def test_rendered_template_runs_against_s3(
    path: Path, name: str, tmp_path: Path, s3_bucket: S3Bucket, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The S3 emulator (tests/fixtures/s3.py, dummy credentials for the session). The local env renders
    # no endpoint; botocore's standard variable points every step at the emulator.
    s3_endpoint = s3_bucket.endpoint
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    probe = api.prepare(name, env="local", workdir=tmp_path)
    params = {}
    for param in (probe.spec.get("arguments") or {}).get("parameters") or []:
        value = str(param.get("value", ""))
        if value.startswith("file://"):
            params[param["name"]] = f"{s3_bucket.uri}/" + value.split("/store/", 1)[-1].lstrip("/")
        if param["name"] == "s3-endpoint":
            params[param["name"]] = s3_endpoint
    if not params:
        pytest.fail(f"{name}: no storage parameter to point at S3")
    workflow_run = api.prepare(name, env="local", workdir=tmp_path, parameters=params, backoff_scale=BACKOFF)
    _check(workflow_run, workflow_run.run())
