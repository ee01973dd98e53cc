"""Every rendered WorkflowTemplate Succeeds on the real node (`kiosk cluster up --with node`), its
steps in the images built here, rendered for the env the real node runs (`pipelines.cluster.node_env`,
configured like a cloud one: the store and the artifact repository in S3 behind the `minio` Service,
by that name, with credentials from a Secret), and so does `kiosk demo --engine argo --node real`.
batch-inference's outputs are the same objects, byte for byte, as `kiosk run`'s on the same inputs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s
from kubernetes import watch as k8s_watch

from pipelines.cluster import node, objectstore, workflows
from pipelines.cluster import node_env as real_node_env
from pipelines.cluster.components import real_node as real_node_component
from pipelines.tools import REPO_ROOT
from steps.common.storage import open_store
from tests.cluster.conftest import Cluster, default_service_account
from tests.cluster.test_templates import RENDERED, published
from tests.fixtures.waiting import wait_until

NAMESPACE = "kiosk-real-node-env"  # not the demo's (`node_env.NAMESPACE`): this module deletes it
IMAGES = 8
#: About 30 s of two lanes' work here (5 images/s at 512x512, 40 at 128x128): busy well past
#: RECENTLY_STARTED_S.
GRACEFUL_IMAGES = 160
GRACEFUL_SIZE = 512
#: Argo recreates a pod that goes missing this soon after its node started, taking it as never
#: created (RECENTLY_STARTED_POD_DURATION, 10 s by default); later, the attempt is an Error and the
#: retryStrategy runs the next one. The test deletes the lane after this, to take the retry path.
RECENTLY_STARTED_S = 10
#: How Argo records the deleted attempt: by the exit it saw (the SIGTERM), or, when the pod was gone
#: before the controller saw its last status, as deleted. Both are retried.
DELETED_ATTEMPT = {("Failed", "main: Error (exit code 143)"), ("Error", "pod deleted")}


@dataclass(frozen=True)
class NodeEnv:
    cluster: Cluster
    bucket: str
    prefix: str  # the env's storage root in the bucket
    host_endpoint: str  # the emulator as the host reaches it

    def uri(self, *parts: str) -> str:
        return "/".join([f"s3://{self.bucket}/{self.prefix}", *parts])

    def keys(self, *parts: str) -> dict[str, bytes]:
        """Every object under a prefix of the env's store, by key relative to it."""
        store = open_store(self.uri(*parts), s3_endpoint=self.host_endpoint)
        return {info.key: store.get_bytes(info.key) for info in store.list()}

    def names(self, *parts: str) -> list[str]:
        """The keys under a prefix of the env's store, relative to it (listed, not read)."""
        return [info.key for info in open_store(self.uri(*parts), s3_endpoint=self.host_endpoint).list()]

    def submit(self, name: str, parameters: dict[str, str]) -> str:
        """Submit the WorkflowTemplate placed on the real node; the Workflow's name."""
        manifest = workflows.from_template(name, NAMESPACE, parameters)
        manifest["spec"] |= real_node_component.PLACEMENT
        return str(workflows.create(self.cluster.api, manifest)["metadata"]["name"])

    def succeeded(self, name: str, parameters: dict[str, str], timeout_s: float = 400) -> dict[str, Any]:
        """Submit it and wait: it Succeeded, every pod ran on the real node."""
        return self.finished(self.submit(name, parameters), timeout_s)

    def finished(self, workflow_name: str, timeout_s: float = 400) -> dict[str, Any]:
        workflow = workflows.wait(self.cluster.api, NAMESPACE, workflow_name, timeout_s)
        pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
        failed = {n["displayName"]: n.get("message") for n in pods if n["phase"] != "Succeeded"}
        assert workflow["status"]["phase"] == "Succeeded", (workflow["status"].get("message"), failed)
        assert {n["hostNodeName"] for n in pods} == {node.NAME}
        return workflow


@pytest.fixture(scope="module")
def node_env(cluster: Cluster, real_node: node.NodeLayout) -> Iterator[NodeEnv]:
    applied = real_node_env.apply(cluster.api, cluster.state, namespace=NAMESPACE)
    core = k8s.CoreV1Api(cluster.api)
    repository = core.read_namespaced_config_map("artifact-repositories", NAMESPACE).data
    endpoint = real_node_env.ENDPOINT.removeprefix("http://")
    assert yaml.safe_load(next(iter(repository.values())))["s3"]["endpoint"] == endpoint
    objects = k8s.CustomObjectsApi(cluster.api)
    assert not objects.list_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE, "cronworkflows")["items"]
    assert objects.list_namespaced_custom_object("argoproj.io", "v1alpha1", NAMESPACE, "workflowtemplates")["items"]
    wait_until(lambda: default_service_account(core, NAMESPACE), 60, f"the default ServiceAccount in {NAMESPACE}")
    store = applied.store
    with _host_keys(store):
        yield NodeEnv(cluster=cluster, bucket=store.bucket, prefix=applied.prefix, host_endpoint=store.endpoint)
    core.delete_namespace(NAMESPACE)
    wait_until(lambda: not core.list_namespaced_pod(NAMESPACE).items, 120, f"the pods of {NAMESPACE} to be deleted")


@contextmanager
def _host_keys(store: objectstore.ObjectStore) -> Iterator[None]:
    """The host reads the store with the Secret's keys."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AWS_ACCESS_KEY_ID", store.access_key)
        env.setenv("AWS_SECRET_ACCESS_KEY", store.secret_key)
        env.setenv("AWS_DEFAULT_REGION", "us-east-1")
        yield


def _synth(env: NodeEnv, prefix: str, count: int = IMAGES, size: int = 128) -> str:
    uri = env.uri("uploads", prefix)
    env.succeeded("synthetic-data", {"output-uri": uri, "count": str(count), "width": str(size), "height": str(size)})
    return uri


def case_synthetic_data(env: NodeEnv, tmp_path: Path) -> None:
    _synth(env, "synth-case")
    assert len([k for k in env.keys("uploads", "synth-case") if k.endswith(".png")]) == IMAGES


def case_batch_inference(env: NodeEnv, tmp_path: Path) -> None:
    uploads = _synth(env, "inference-case")
    params = {"input-uri": uploads, "output-uri": env.uri("outputs", "inference-case")}
    found = published(env.succeeded("batch-inference", params))
    assert (found["processed"], found["failed"]) == (str(IMAGES), "0"), found
    on_node = env.keys("outputs", "inference-case")
    assert on_node, "no outputs"
    # The same inputs through `kiosk run` on the file store: the same objects, byte for byte.
    workdir = tmp_path / "run"  # its pods get a private /tmp: the store lies in the workdir
    inputs = workdir / "store" / "uploads"
    for key, body in env.keys("uploads", "inference-case").items():
        (inputs / key).parent.mkdir(parents=True, exist_ok=True)
        (inputs / key).write_bytes(body)
    out = workdir / "store" / "outputs"
    argv = [sys.executable, "-m", "pipelines.cli", "run", "batch-inference", "--workdir", str(workdir)]
    argv += ["-p", f"input-uri=file://{inputs}", "-p", f"output-uri=file://{out}"]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    local = {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert sorted(local) == sorted(on_node)
    assert {k: _result(v) for k, v in local.items()} == {k: _result(v) for k, v in on_node.items()}


#: What a result says of its store: the input's and mask's URIs (s3:// on the node, file:// locally)
#: and the input's etag (S3's MD5; the file store's size and mtime).
STORE_FIELDS = ("input", "etag", "mask")


def _result(body: bytes) -> Any:
    """A result record without its store's fields (masks and other files: their bytes)."""
    if not body.startswith(b"{"):
        return body
    return {k: v for k, v in json.loads(body).items() if k not in STORE_FIELDS}


def case_benchmark(env: NodeEnv, tmp_path: Path) -> None:
    found = published(env.succeeded("benchmark", {}, 600))
    assert sorted(found) == ["best-config", "cost-per-1k-images", "images-per-second", "report-uri"], found
    assert float(found["images-per-second"]) > 0
    report = found["report-uri"]
    assert report.startswith(env.uri()), report


def case_retention_cleanup(env: NodeEnv, tmp_path: Path) -> None:
    """A dry run over fresh objects: nothing is old enough, nothing is deleted (S3 objects cannot be
    back-dated here; the file-store case on the agent checks real deletions).
    """
    _synth(env, "retention-case")
    before = env.keys("uploads", "retention-case")
    found = published(env.succeeded("retention-cleanup", {"older-than": "7d"}))
    assert found.get("deleted", "0") == "0", found
    assert env.keys("uploads", "retention-case") == before


def case_publish_model(env: NodeEnv, tmp_path: Path) -> None:
    uri = env.uri("model-repository-case")
    env.succeeded("publish-model", {"repository-uri": uri, "model-name": "detector", "model-version": "3"})
    published_keys = env.keys("model-repository-case")
    assert len(published_keys["detector/3/model.onnx"]) > 0
    assert b"max_batch_size" in published_keys["detector/config.pbtxt"]


def _writing_lane(env: NodeEnv, core: k8s.CoreV1Api, workflow: str) -> str | None:
    """A lane pod of `workflow` past Argo's recently-started window, once some of the results are in
    the output prefix, and not all.
    """
    selector = f"workflows.argoproj.io/workflow={workflow}"
    now = datetime.now(UTC)
    running = [
        p.metadata.name
        for p in core.list_namespaced_pod(NAMESPACE, label_selector=selector).items
        if "-infer-" in p.metadata.name
        and p.status.phase == "Running"
        and (now - p.status.start_time).total_seconds() > RECENTLY_STARTED_S
    ]
    if not running:
        return None
    written = [k for k in env.names("outputs", "graceful-case") if k.endswith(".json")]
    return running[0] if 0 < len(written) < GRACEFUL_IMAGES else None


CASES = {
    name.removeprefix("case_").replace("_", "-"): fn for name, fn in dict(globals()).items() if name.startswith("case_")
}


def test_every_rendered_template_has_a_real_node_case() -> None:
    assert sorted(CASES) == RENDERED


@pytest.mark.parametrize("name", RENDERED)
def test_rendered_template_succeeds_on_the_real_node(node_env: NodeEnv, name: str, tmp_path: Path) -> None:
    CASES[name](node_env, tmp_path)


def test_real_node_lane_deleted_mid_run_stops_on_sigterm_and_the_retry_loses_nothing(node_env: NodeEnv) -> None:
    """`kubectl delete pod` of a lane while it writes outputs: kubelet sends SIGTERM, the lane's
    container hands its claims back and exits on it (143) within the grace period, not killed after
    it (137); the rendered retryStrategy runs the lane again, and the run ends with every image
    processed exactly once.
    """
    count = GRACEFUL_IMAGES
    uploads = _synth(node_env, "graceful-case", count, GRACEFUL_SIZE)
    outputs = node_env.uri("outputs", "graceful-case")
    params = {"input-uri": uploads, "output-uri": outputs, "shard-size": "4", "batch-size": "2"}
    name = node_env.submit("batch-inference", params)
    core = k8s.CoreV1Api(node_env.cluster.api)
    lane = wait_until(lambda: _writing_lane(node_env, core, name), 300, "a lane to be writing outputs")
    watch = k8s_watch.Watch()
    core.delete_namespaced_pod(lane, NAMESPACE)
    last = None
    for event in watch.stream(
        core.list_namespaced_pod, NAMESPACE, field_selector=f"metadata.name={lane}", timeout_seconds=120
    ):
        last = event["object"]
        if event["type"] == "DELETED":
            watch.stop()
    assert last is not None
    main = next(s for s in last.status.container_statuses if s.name == "main")
    assert main.state.terminated is not None and main.state.terminated.exit_code == 143, main.state
    workflow = node_env.finished(name, 600)
    found = published(workflow)
    assert (found["processed"], found["failed"]) == (str(count), "0"), found
    lanes = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod" and n["templateName"] == "infer"]
    shown = sorted((n["displayName"], n["phase"], n.get("message", "")) for n in lanes)
    failed = [(phase, message) for _, phase, message in shown if phase != "Succeeded"]
    assert len(failed) == 1 and failed[0] in DELETED_ATTEMPT, shown
    assert len(lanes) == 3, shown  # two lanes, one of them twice
    inputs = {k for k in node_env.names("uploads", "graceful-case") if k.endswith(".png")}
    written = node_env.names("outputs", "graceful-case")
    assert sorted(k for k in written if k.endswith(".json")) == sorted(f"{k}.json" for k in inputs)
    assert [k for k in written if not k.endswith((".json", ".png"))] == []  # nothing staged is visible
    # The stopped lane handed its claims back (marked failed), so they were taken over at once.
    assert [k for k in node_env.names("runs", name, "queue", "claims") if k.endswith(".failed.json")], name


def test_demo_on_the_real_node(node_env: NodeEnv) -> None:
    """The command docs/cluster.md shows, as written: every pod of its four workflows runs on the real
    node, and its dataset and outputs are in the emulator's bucket, by the `minio` Service's name.
    """
    cluster = node_env.cluster
    argv = ["uv", "run", "kiosk", "demo", "--engine", "argo", "--node", "real", "--json"]
    done = subprocess.run([*argv, "--workdir", str(cluster.workdir)], cwd=REPO_ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["ok"] and (summary["processed"], summary["failed"]) == (64, 0), summary
    store = objectstore.load(cluster.state)
    assert store is not None
    root = f"s3://{store.bucket}/{real_node_env.NAMESPACE}/"
    assert summary["dataset"].startswith(root) and summary["outputs"].startswith(root), summary
    assert summary["report"].startswith(root), summary
    objects = k8s.CustomObjectsApi(cluster.api)
    namespace = real_node_env.NAMESPACE
    ran = objects.list_namespaced_custom_object("argoproj.io", "v1alpha1", namespace, "workflows")["items"]
    assert len(ran) == 4, [w["metadata"]["name"] for w in ran]
    for workflow in ran:
        assert workflow["status"]["phase"] == "Succeeded", workflow["metadata"]["name"]
        pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
        assert pods and {n["hostNodeName"] for n in pods} == {node.NAME}, workflow["metadata"]["name"]
    outputs = summary["outputs"].removeprefix(f"s3://{store.bucket}/")
    with _host_keys(store):
        listed = open_store(f"s3://{store.bucket}/{outputs}", s3_endpoint=store.endpoint).list()
        assert len([info for info in listed if info.key.endswith(".png.json")]) == 64
