"""Upstream's artifact examples on Argo's real controller and executor, with an S3 artifact repository
on the S3 emulator (moto's server on 127.0.0.1).

The local runner refuses artifacts (tests/fixtures/upstream_examples.py, EXCLUDED); the real
engine runs them: argoexec's wait container uploads each output artifact to the bucket and its init
container downloads each input. Selected by rule: every example the runner's fidelity rule picks but
excludes for an `*.artifacts` feature, except those in LEFT_OUT. Each must Succeed, and every output
artifact its nodes report must be an object in the bucket.
"""

from __future__ import annotations

import contextlib
from typing import Any

import pytest
import yaml

from pipelines.cluster import workflows
from steps.common.storage import open_store
from tests.cluster.conftest import Cluster, executor_namespace
from tests.fixtures import upstream_examples as upstream
from tests.fixtures.s3 import S3Server
from tests.fixtures.waiting import wait_until

NAMESPACE = "artifacts"
SECRET = "artifact-s3"
#: Candidates not run here, with why.
LEFT_OUT = {
    "artifact-passing-explicit-plugin.yaml": "needs an artifact plugin named `test` (a sidecar image)",
    # A pod's private /tmp holds the host paths it must reach under /tmp, bound back (here the test
    # cluster's workdir, which pytest puts under /tmp; the default workdir `.kiosk` is not): an
    # artifact of the whole /tmp would archive that tree while other pods write to it.
    "artifact-passing-subpath.yaml": "archives the pod's whole /tmp, which here holds the test workdir",
    # Pods share the host's root filesystem (there are no images here): a container's working
    # directory is a directory of its own, not the image's WORKDIR, so `/result.txt` is not its file.
    "conditional-artifacts.yaml": "writes result.txt relative to the image's WORKDIR (/) and outputs /result.txt",
    "dag-conditional-artifacts.yaml": "writes result.txt relative to the image's WORKDIR (/) and outputs /result.txt",
    "map-reduce.yaml": "makes /mnt/out in the image's root filesystem, which here is the host's, shared by runs",
    "variables-showcase.yaml": "its daemon runs busybox `nc -lk -p 9999 -e`, which this host's tools lack",
}
EXAMPLE_TIMEOUT_S = 180


def selected() -> list[str]:
    return sorted(
        rel
        for rel, reason in upstream.EXCLUDED.items()
        if reason.startswith(upstream.UNSUPPORTED) and reason.endswith("artifacts") and rel not in LEFT_OUT
    )


def _repository(endpoint: str, bucket: str, prefix: str) -> str:
    return yaml.safe_dump(
        {
            "s3": {
                "bucket": bucket,
                "endpoint": endpoint.removeprefix("http://"),
                "insecure": True,
                "keyFormat": f"{prefix}/{{{{workflow.name}}}}/{{{{pod.name}}}}",
                "accessKeySecret": {"name": SECRET, "key": "accessKey"},
                "secretKeySecret": {"name": SECRET, "key": "secretKey"},
            }
        }
    )


def _namespace(cluster: Cluster, endpoint: str, bucket: str) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": SECRET, "namespace": NAMESPACE},
        "stringData": {"accessKey": "testing", "secretKey": "testing"},
    }
    # The namespace's default repository (Argo's artifact-repositories convention), and `my-key`,
    # which artifact-repository-ref.yaml names.
    repositories = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "artifact-repositories",
            "namespace": NAMESPACE,
            "annotations": {"workflows.argoproj.io/default-artifact-repository": "default-v1"},
        },
        "data": {
            "default-v1": _repository(endpoint, bucket, "default"),
            "my-key": _repository(endpoint, bucket, "my-key"),
        },
    }
    executor_namespace(cluster.dynamic, NAMESPACE, (secret, repositories))


def _run_all(cluster: Cluster, names: list[str]) -> dict[str, Any]:
    root = upstream.examples_dir()
    running = {}
    for rel in names:
        doc = next(d for d in yaml.safe_load_all((root / rel).read_text()) if isinstance(d, dict))
        doc["metadata"]["namespace"] = NAMESPACE
        running[rel] = workflows.create(cluster.api, doc)["metadata"]["name"]
    done: dict[str, Any] = {}

    def all_finished() -> bool:
        for rel, name in list(running.items()):
            workflow = workflows.get(cluster.api, NAMESPACE, name)
            if (workflow.get("status") or {}).get("phase") in workflows.DONE:
                done[rel] = workflow
                del running[rel]
        return not running

    # Past the bound, each example still running fails its own test with the phase it was in.
    with contextlib.suppress(TimeoutError):
        budget = EXAMPLE_TIMEOUT_S * max(1, len(names) // 3)
        wait_until(all_finished, budget, "the artifact examples to finish", poll=1)
    for rel, name in running.items():
        done[rel] = workflows.get(cluster.api, NAMESPACE, name)
    return done


@pytest.fixture(scope="module")
def outcomes(cluster: Cluster, s3_server: S3Server) -> tuple[dict[str, Any], S3Server, str]:
    bucket = s3_server.create_bucket()
    _namespace(cluster, s3_server.endpoint, bucket)
    return _run_all(cluster, selected()), s3_server, bucket


def test_the_rule_selects_the_artifact_examples() -> None:
    names = selected()
    assert len(names) >= 5, names
    assert "artifact-passing.yaml" in names and "input-artifact-raw.yaml" in names


def _failed_nodes(workflow: dict[str, Any]) -> dict[str, str]:
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    return {
        n["displayName"]: n.get("message", "") for n in nodes.values() if n["phase"] not in ("Succeeded", "Skipped")
    }


def _exists(server: S3Server, bucket: str, key: str) -> bool:
    return open_store(f"s3://{bucket}", s3_endpoint=server.endpoint).head(key) is not None


@pytest.mark.parametrize("rel", selected())
def test_artifact_example_succeeds_on_the_real_engine(outcomes, rel: str) -> None:
    done, server, bucket = outcomes
    workflow = done[rel]
    status = workflow.get("status") or {}
    assert status.get("phase") == "Succeeded", (
        rel,
        status.get("phase"),
        status.get("message"),
        _failed_nodes(workflow),
    )
    uploaded = [
        artifact["s3"]["key"]
        for node in status.get("nodes", {}).values()
        for artifact in (node.get("outputs") or {}).get("artifacts") or []
        if "s3" in artifact
    ]
    for key in uploaded:
        assert _exists(server, bucket, key), (rel, key)


def test_an_artifact_goes_to_the_bucket_and_back(outcomes) -> None:
    """artifact-passing: the producer's file is an S3 object, and the consumer (`cat /tmp/message`,
    which fails without the file) succeeded on what its init container downloaded.
    """
    done, server, bucket = outcomes
    nodes = {n["displayName"]: n for n in done["artifact-passing.yaml"]["status"]["nodes"].values()}
    produced = [a for a in nodes["generate-artifact"]["outputs"]["artifacts"] if a["name"] == "hello-art"]
    assert produced and _exists(server, bucket, produced[0]["s3"]["key"]), produced
    assert nodes["consume-artifact"]["phase"] == "Succeeded"
