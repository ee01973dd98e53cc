"""Every rendered template of ours runs end to end locally: file store, and once against S3 (moto).

Cases are discovered from `argocd/workflows/local/` (written by `kiosk render`). A step that still
answers "not implemented" (exit code 3) fails its case, naming the step.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipelines import demo
from pipelines.runner import api
from pipelines.runner.loading import RUNNABLE, env_tree

#: Rendered retry backoffs are minutes long (cluster values); the semantics are tested elsewhere.
BACKOFF = 0.001
RENDERED = sorted(
    (path, doc["metadata"]["name"])
    for path in env_tree("local").glob("*.yaml")
    for doc in yaml.safe_load_all(path.read_text())
    if isinstance(doc, dict) and doc.get("kind") in RUNNABLE and doc.get("kind") != "Workflow"
)


def _check(engine: Any, workflow: dict[str, Any]) -> None:
    missing = demo._missing_steps(workflow, engine.run_dir)
    assert not missing, "; ".join(missing)
    assert workflow["status"]["phase"] == "Succeeded", workflow["status"].get("message")


@pytest.mark.parametrize(("path", "name"), RENDERED, ids=[n for _, n in RENDERED])
def test_rendered_template_runs_on_the_file_store(path: Path, name: str, tmp_path: Path) -> None:
    engine = api.prepare(name, env="local", workdir=tmp_path, backoff_scale=BACKOFF)
    _check(engine, engine.run())


@pytest.fixture(scope="module")
def s3_endpoint() -> Any:
    moto = pytest.importorskip("moto.server")
    server = moto.ThreadedMotoServer(ip_address="127.0.0.1", port=0)  # an S3 emulator on loopback
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    import boto3  # tests may use boto3; the runner never does

    endpoint = f"http://{host}:{port}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="kiosk-test")
    yield endpoint
    server.stop()


@pytest.mark.parametrize(("path", "name"), RENDERED[:1], ids=[n for _, n in RENDERED[:1]])
def test_rendered_template_runs_against_s3(
    path: Path, name: str, tmp_path: Path, s3_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The local env renders no endpoint; botocore's standard variable points every step at the emulator.
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    probe = api.prepare(name, env="local", workdir=tmp_path)
    params = {}
    for param in (probe.spec.get("arguments") or {}).get("parameters") or []:
        value = str(param.get("value", ""))
        if value.startswith("file://"):
            params[param["name"]] = "s3://kiosk-test/" + value.split("/store/", 1)[-1].lstrip("/")
        if param["name"] == "s3-endpoint":
            params[param["name"]] = s3_endpoint
    if not params:
        pytest.fail(f"{name}: no storage parameter to point at S3")
    engine = api.prepare(name, env="local", workdir=tmp_path, parameters=params, backoff_scale=BACKOFF)
    _check(engine, engine.run())
