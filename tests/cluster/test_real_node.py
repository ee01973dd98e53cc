"""A real kubelet joins the local cluster over containerd, runc and the CNI bridge, and runs one
of the images built here as a pod under the hardened securityContext the rendered templates use.

It joins the session's control plane as a second node, tainted so that no other test's pod lands
on it; `kiosk cluster up` does not start it yet (the agent still runs the cluster's pods).
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client as k8s

from pipelines.cluster import network, node
from pipelines.cluster.state import free_port
from pipelines.images.archive import read_index
from pipelines.tools import REPO_ROOT
from tests.cluster.conftest import Cluster
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until

TAINT = "kiosk.dev/real-node"
IMAGES = ("pause", "argosay", "kiosk-steps")
PROBE = 'id -u; grep -E "^(CapEff|Seccomp):" /proc/self/status; touch /root-write 2>&1; touch /tmp/ok && echo tmp-ok'


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def real_node(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[node.NodeLayout]:
    tmp_path = tmp_path_factory.mktemp("real-node")
    for name in node.BINARIES:
        require_tool(name)
    tools = node.binaries()
    index = read_index(REPO_ROOT / ".tools" / "images")
    archives = [REPO_ROOT / ".tools" / "images" / index[name]["archive"] for name in IMAGES]
    layout = node.NodeLayout(root=tmp_path / "node", kubelet_port=free_port(), healthz_port=free_port())
    created_bridge = not network.bridge_exists()
    network.ensure_bridge()
    node.write_configs(layout, tools)
    logs = tmp_path / "node-logs"
    logs.mkdir()
    with open(logs / "containerd.log", "wb") as out:
        containerd = subprocess.Popen(
            node.containerd_argv(layout, tools), stdout=out, stderr=out, env=node.runtime_env(tools)
        )
    kubelet = None
    try:
        node.wait_socket(layout, 60, lambda: _alive(containerd, logs / "containerd.log"))
        node.import_images(layout, tools, archives)
        argv = [
            *node.kubelet_argv(layout, tools, cluster.state.kubeconfig),
            f"--register-with-taints={TAINT}=true:NoSchedule",
        ]
        with open(logs / "kubelet.log", "wb") as out:
            kubelet = subprocess.Popen(argv, stdout=out, stderr=out, env=node.runtime_env(tools))
        core = k8s.CoreV1Api(cluster.api)
        wait_until(lambda: _ready(core, kubelet, logs / "kubelet.log"), 120, "the real node to be Ready")
        yield layout
    finally:
        if kubelet is not None:
            _stop(kubelet)
        _stop(containerd)
        node.unmount_all(layout.root)
        if created_bridge:
            network.remove_bridge()
        core = k8s.CoreV1Api(cluster.api)
        if _exists(core):
            core.delete_node(node.NAME)
    # After the node stopped: nothing of it is mounted, no pod's interface is left.
    assert str(layout.root) not in Path("/proc/mounts").read_text()
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "veth" not in links, links


def _alive(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"exited {proc.returncode}: {log.read_text()[-2000:]}")


def _exists(core: k8s.CoreV1Api) -> bool:
    return any(n.metadata.name == node.NAME for n in core.list_node().items)


def _ready(core: k8s.CoreV1Api, kubelet: subprocess.Popen, log: Path) -> bool:
    _alive(kubelet, log)
    if not _exists(core):
        return False
    conditions = core.read_node(node.NAME).status.conditions or []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _container(name: str, image: str, command: list[str], limits: dict[str, str]) -> dict:
    """A container under the rendered templates' securityContext (pipelines/templates)."""
    return {
        "name": name,
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
        "resources": {"limits": limits},
        "securityContext": {
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _hardened_pod(name: str, *containers: dict) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name},
        "spec": {
            "nodeName": node.NAME,
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "tolerations": [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
            "securityContext": {"runAsUser": 10001, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": list(containers),
        },
    }


def _run(core: k8s.CoreV1Api, namespace: str, pod: dict) -> k8s.V1Pod:
    """Create `pod` in a namespace of its own and wait until it finished."""
    core.create_namespace({"metadata": {"name": namespace}})
    core.create_namespaced_pod(namespace, pod)
    name = pod["metadata"]["name"]

    def finished() -> k8s.V1Pod | None:
        read = core.read_namespaced_pod(name, namespace)
        return read if read.status.phase in ("Succeeded", "Failed") else None

    return wait_until(finished, 180, f"pod {name} to finish")


def _delete(core: k8s.CoreV1Api, namespace: str) -> None:
    core.delete_namespace(namespace)
    wait_until(lambda: not core.list_namespaced_pod(namespace).items, 120, f"the pods of {namespace} to be deleted")


def _log(layout: node.NodeLayout, namespace: str, container: str) -> list[str]:
    """A container's log as kubelet wrote it (CRI lines: time, stream, tag, message)."""
    files = sorted(layout.pod_logs.glob(f"{namespace}_*/{container}/*.log"))
    return [line.split(" ", 3)[-1] for log in files for line in log.read_text().splitlines()]


def test_real_node_runs_a_hardened_pod(cluster: Cluster, real_node: node.NodeLayout):
    core = k8s.CoreV1Api(cluster.api)
    namespace = "kiosk-real-node"
    probe = _container(
        "main", "docker.io/argoproj/argosay:v2", ["/bin/sh", "-c", PROBE], {"cpu": "500m", "memory": "64Mi"}
    )
    try:
        pod = _run(core, namespace, _hardened_pod("probe", probe))
        assert pod.status.phase == "Succeeded"
        assert ipaddress.ip_address(pod.status.pod_ip) in ipaddress.ip_network(network.POD_CIDR)  # the CNI bridge
        lines = _log(real_node, namespace, "main")
        assert lines[0] == "10001", lines
        assert "CapEff:\t0000000000000000" in lines and "Seccomp:\t2" in lines, lines
        assert any("Read-only file system" in line for line in lines), lines
        assert lines[-1] == "tmp-ok", lines
    finally:
        _delete(core, namespace)


def test_real_node_enforces_the_limits_on_the_steps_image(cluster: Cluster, real_node: node.NodeLayout):
    """The steps image: ONNX Runtime's intra-op threads follow the CPU limit (1 of this node's
    cores), and a step that outgrows its memory limit is OOM-killed (exit 137), as Argo's
    retryStrategy then sees it.
    """
    core = k8s.CoreV1Api(cluster.api)
    namespace = "kiosk-real-node-limits"
    threads = "from steps.infer.model import _options; print(_options(0).intra_op_num_threads)"
    cpu = _container("threads", "localhost/kiosk-steps:dev", ["python", "-c", threads], {"cpu": "1", "memory": "512Mi"})
    grow = "b = b'x' * (512 * 2**20); print('not killed')"
    memory = _container("grow", "localhost/kiosk-steps:dev", ["python", "-c", grow], {"cpu": "1", "memory": "128Mi"})
    try:
        pod = _run(core, namespace, _hardened_pod("limits", cpu, memory))
        states = {s.name: s.state.terminated for s in pod.status.container_statuses}
        assert states["threads"].exit_code == 0 and _log(real_node, namespace, "threads") == ["1"]
        assert (states["grow"].exit_code, states["grow"].reason) == (137, "OOMKilled"), states["grow"]
        assert pod.status.phase == "Failed"
    finally:
        _delete(core, namespace)
