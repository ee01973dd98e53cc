"""What a pod on the local cluster can see: its own volumes and token, not the cluster's directory
(PKI, admin and controller kubeconfigs, etcd data, other pods' tokens and secrets), which the agent
covers with an empty tmpfs in every container.
"""

from __future__ import annotations

import contextlib
import uuid
from pathlib import Path

from tests.cluster.conftest import Cluster, container_workflow, executor_namespace

NAMESPACE = "isolation"


def test_a_pod_sees_its_token_but_not_the_clusters_directory(cluster: Cluster) -> None:
    executor_namespace(cluster.dynamic, NAMESPACE)
    root = cluster.state.root
    assert (root / "kubeconfig").is_file() and (root / "pki").is_dir()  # what the pod must not read
    check = (
        "test -s /var/run/secrets/kubernetes.io/serviceaccount/token"
        f' && test ! -e {root / "kubeconfig"} && test ! -e {root / "pki"} && test -z "$(ls -A {root})"'
    )
    workflow = container_workflow("isolation-", NAMESPACE, ["sh", "-c", check])
    done = cluster.run(workflow, timeout_s=120)
    nodes = {n["displayName"]: n.get("message") for n in done["status"]["nodes"].values()}
    assert done["status"]["phase"] == "Succeeded", (done["status"].get("message"), nodes)


def _written_from(cluster: Cluster, template: dict, word: str) -> str:
    """Run one container writing `word` to result.txt relative to its working directory; its `pwd`."""
    workflow = container_workflow("cwd-", NAMESPACE, ["sh", "-c", f"echo {word} > result.txt && pwd > /tmp/pwd"])
    main = workflow["spec"]["templates"][0]
    main["container"].update(template)
    main["outputs"] = {"parameters": [{"name": "pwd", "valueFrom": {"path": "/tmp/pwd"}}]}
    done = cluster.run(workflow, timeout_s=120)
    assert done["status"]["phase"] == "Succeeded", done["status"].get("message")
    (node,) = [n for n in done["status"]["nodes"].values() if n["type"] == "Pod"]
    return node["outputs"]["parameters"][0]["value"]


def test_a_pods_relative_write_lands_in_its_own_directory(cluster: Cluster) -> None:
    executor_namespace(cluster.dynamic, NAMESPACE)
    cwd = _written_from(cluster, {}, "heads")
    assert cwd == "/tmp"  # the container's private /tmp, not the checkout
    (written,) = [p for p in (cluster.state.root / "pods").rglob("result.txt") if p.read_text() == "heads\n"]
    assert written.parent.name == "tmp"


def test_a_declared_working_dir_is_the_pods_own(cluster: Cluster) -> None:
    executor_namespace(cluster.dynamic, NAMESPACE)
    target = f"/kiosk-test-workdir-{uuid.uuid4().hex[:8]}"  # absent on the host: the pod's work/ is bound there
    try:
        cwd = _written_from(cluster, {"workingDir": target}, "tails")
        assert cwd == target
        assert not (Path(target) / "result.txt").exists()  # written into the pod's directory, seen only there
        (written,) = [p for p in (cluster.state.root / "pods").rglob("result.txt") if p.read_text() == "tails\n"]
        assert written.parent.name == "work"
    finally:
        with contextlib.suppress(OSError):
            Path(target).rmdir()  # the empty mount point the pod made, as kubelet makes a volume's
