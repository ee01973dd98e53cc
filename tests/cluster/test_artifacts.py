"""Upstream's artifact examples on Argo's real controller and executor, submitted as a new user
would into the local env's namespace after `kiosk cluster up` + `kiosk apply --env local` (the
session's cluster fixture), with no extra setup: the artifact repository is the one `up` makes on
its own S3 emulator (pipelines/cluster/objectstore.py, gofakes3 on the node IP).

The local runner refuses artifacts (tests/fixtures/upstream_examples.py, EXCLUDED); the real
engine runs them: argoexec's wait container uploads each output artifact to the bucket and its init
container downloads each input. Selected by rule: every example the runner's fidelity rule picks but
excludes for an `*.artifacts` feature, except those in LEFT_OUT. Each must Succeed, and every output
artifact its nodes report must be an object in the emulator's bucket.
"""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from pipelines import render
from pipelines.cluster import network, objectstore, workflows
from pipelines.config import load_config
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import NAMESPACE, Cluster
from tests.fixtures import upstream_examples as upstream
from tests.fixtures.waiting import wait_until

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


def _run_all(cluster: Cluster, names: list[str]) -> dict[str, Any]:
    root = upstream.examples_dir()
    running = {}
    for rel in names:
        doc = next(d for d in yaml.safe_load_all((root / rel).read_text()) if isinstance(d, dict))
        doc["metadata"]["namespace"] = NAMESPACE  # `argo submit -n kiosk-local FILE`
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
def store(cluster: Cluster) -> objectstore.ObjectStore:
    found = objectstore.load(cluster.state)
    assert found is not None and cluster.state.alive(objectstore.NAME), cluster.state.pids
    return found


@pytest.fixture(scope="module")
def outcomes(cluster: Cluster, store: objectstore.ObjectStore) -> dict[str, Any]:
    return _run_all(cluster, selected())


def test_the_rule_selects_the_artifact_examples() -> None:
    names = selected()
    assert len(names) >= 5, names
    assert "artifact-passing.yaml" in names and "input-artifact-raw.yaml" in names


def _failed_nodes(workflow: dict[str, Any]) -> dict[str, str]:
    nodes = (workflow.get("status") or {}).get("nodes") or {}
    return {
        n["displayName"]: n.get("message", "") for n in nodes.values() if n["phase"] not in ("Succeeded", "Skipped")
    }


def _exists(store: objectstore.ObjectStore, key: str) -> bool:
    """HEAD the object (gofakes3 takes unsigned requests)."""
    request = urllib.request.Request(f"{store.endpoint}/{store.bucket}/{key}", method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return bool(answer.status == 200)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return False
        raise


@pytest.mark.parametrize("rel", selected())
def test_artifact_example_succeeds_on_the_real_engine(outcomes, store, rel: str) -> None:
    workflow = outcomes[rel]
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
        assert _exists(store, key), (rel, key)


def test_an_artifact_goes_to_the_bucket_and_back(outcomes, store) -> None:
    """artifact-passing: the producer's file is an S3 object, and the consumer (`cat /tmp/message`,
    which fails without the file) succeeded on what its init container downloaded.
    """
    nodes = {n["displayName"]: n for n in outcomes["artifact-passing.yaml"]["status"]["nodes"].values()}
    produced = [a for a in nodes["generate-artifact"]["outputs"]["artifacts"] if a["name"] == "hello-art"]
    assert produced and _exists(store, produced[0]["s3"]["key"]), produced
    assert nodes["consume-artifact"]["phase"] == "Succeeded"


def test_local_repository_is_the_namespaces_default(cluster: Cluster, store: objectstore.ObjectStore) -> None:
    """`artifact-repositories` in kiosk-local: `default-v1` marked default, on the running emulator."""
    cfg = load_config("local").artifact_repository
    found = cluster.dynamic.resources.get(api_version="v1", kind="ConfigMap").get(
        name=cfg.config_map, namespace=NAMESPACE
    )
    assert found.metadata.annotations["workflows.argoproj.io/default-artifact-repository"] == cfg.key
    s3 = yaml.safe_load(found.data[cfg.key])["s3"]
    assert (s3["endpoint"], s3["bucket"]) == (f"{network.NODE_IP}:{cluster.state.ports['objectstore']}", store.bucket)
    assert s3["accessKeySecret"]["name"] == objectstore.SECRET


def test_local_namespace_has_the_minio_service(cluster: Cluster, store: objectstore.ObjectStore) -> None:
    """`minio:9000` in kiosk-local, as in Argo's quick start, routed to the emulator's own port."""
    core = k8s.CoreV1Api(cluster.api)
    service = core.read_namespaced_service(objectstore.SERVICE, NAMESPACE)
    assert [(p.port, p.protocol) for p in service.spec.ports] == [(objectstore.SERVICE_PORT, "TCP")]
    assert service.spec.selector is None  # its endpoints are ours, not the EndpointSlice controller's
    slices = (
        k8s.DiscoveryV1Api(cluster.api)
        .list_namespaced_endpoint_slice(NAMESPACE, label_selector=f"kubernetes.io/service-name={objectstore.SERVICE}")
        .items
    )
    assert [(e.addresses, s.ports[0].port) for s in slices for e in s.endpoints] == [
        ([network.NODE_IP], cluster.state.ports["objectstore"])
    ]


def test_local_credentials_are_in_no_rendered_file(store: objectstore.ObjectStore) -> None:
    """The Secret's content exists only on the cluster: not in argocd/ nor in what `kiosk render` writes."""
    rendered = [text for env in ("local", "dev", "staging", "prod") for text in render.render_env(env).values()]
    committed = [p.read_text(errors="replace") for p in (REPO_ROOT / "argocd").rglob("*") if p.is_file()]
    assert len(store.secret_key) >= 32
    assert not [text for text in rendered + committed if store.secret_key in text]
    assert not [text for text in rendered if objectstore.SECRET in text]
