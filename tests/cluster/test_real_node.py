"""A real kubelet joins the local cluster over containerd, runc and the CNI bridge, and runs one
of the images built here as a pod under the hardened securityContext the rendered templates use.

It joins the session's control plane as a second node, tainted so that no other test's pod lands
on it, with kube-proxy for ClusterIP Services; `kiosk cluster up` does not start it yet (the agent
still runs the cluster's pods).
"""

from __future__ import annotations

import ipaddress
import signal
import subprocess
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest
from kubernetes import client as k8s

from pipelines.cluster import dns, network, node, objectstore
from pipelines.cluster.state import free_port
from pipelines.config import load_config
from pipelines.images.archive import read_index
from pipelines.tools import REPO_ROOT, find_tool
from tests.cluster.conftest import Cluster
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until

TAINT = "kiosk.dev/real-node"
IMAGES = ("pause", "argosay", "kiosk-steps")
SERVICE_ACCOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
#: In-cluster config as client-go builds it (Argo's executor): the Service's env vars, the mounted
#: token and CA, and the API server's name through cluster DNS; each answer names the user the API
#: server saw. Then names: the cluster's resolve, one outside it gets no answer (nothing forwarded).
IN_CLUSTER = f"""
import json, os, socket, ssl, urllib.request
account = "{SERVICE_ACCOUNT}"
namespace = open(f"{{account}}/namespace").read()
context = ssl.create_default_context(cafile=f"{{account}}/ca.crt")
def user(host, port):
    request = urllib.request.Request(
        f"https://{{host}}:{{port}}/apis/authentication.k8s.io/v1/selfsubjectreviews",
        data=json.dumps({{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}}).encode(),
        headers={{"Authorization": "Bearer " + open(f"{{account}}/token").read(), "Content-Type": "application/json"}},
    )
    return json.load(urllib.request.urlopen(request, context=context))["status"]["userInfo"]["username"]
host = os.environ["KUBERNETES_SERVICE_HOST"]
print("env", host, user(host, os.environ["KUBERNETES_SERVICE_PORT"]))
print("dns", user("kubernetes.default.svc", 443))
for name in ("kubernetes.default.svc.cluster.local", "minio", f"minio.{{namespace}}.svc.cluster.local"):
    print(name, socket.gethostbyname(name))
try:
    print("outside", socket.gethostbyname("example.com"))
except OSError:
    print("outside no answer")
"""
#: Through the `minio` Service of the local env's namespace, as Argo's quick start names MinIO: an
#: object written by the short name is read back by the full one.
OBJECT_STORE = """
import os, socket
from steps.common.storage import open_store
namespace = os.environ["NAMESPACE"]
uri = "s3://" + os.environ["BUCKET"] + "/real-node"
open_store(uri, s3_endpoint="http://minio:9000").put_bytes("hello.txt", b"from " + socket.gethostname().encode())
full = f"http://minio.{namespace}.svc.cluster.local:9000"
print(open_store(uri, s3_endpoint=full).get_bytes("hello.txt").decode())
"""
#: A pod that answers HTTP with its name, behind the `echo` Service.
ECHO_SERVER = """
import http.server, socket
class Name(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = socket.gethostname().encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
http.server.HTTPServer(("", 8080), Name).serve_forever()
"""
#: New connections to the Service until both pods answered (a missed one is a 2**-199 chance with
#: kube-proxy's random choice); refused ones while kube-proxy catches up are retried.
ECHO_CLIENT = """
import urllib.request
seen = set()
for _ in range(200):
    try:
        seen.add(urllib.request.urlopen("http://echo", timeout=5).read().decode())
    except OSError:
        continue
    if len(seen) == 2:
        break
print(" ".join(sorted(seen)))
"""
PROBE = 'id -u; grep -E "^(CapEff|Seccomp):" /proc/self/status; touch /root-write 2>&1; touch /tmp/ok && echo tmp-ok'


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _process(argv: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=out, env=env)
    try:
        yield proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def real_node(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[node.NodeLayout]:
    """kubelet, containerd, kube-proxy and CoreDNS, stopped in reverse order; then nothing of them
    is left: no mount, no pod's interface, no Service rule.
    """
    tmp_path = tmp_path_factory.mktemp("real-node")
    for name in (*node.BINARIES, dns.BINARY):
        require_tool(name)
    tools = node.binaries()
    layout = node.NodeLayout(
        root=tmp_path / "node",
        kubelet_port=free_port(),
        healthz_port=free_port(),
        proxy_healthz_port=free_port(),
        proxy_metrics_port=free_port(),
    )
    names = dns.DnsLayout(root=tmp_path / "dns", port=free_port(), ready_port=free_port())
    created_bridge = network.ensure_bridge()
    firewall = node.tables()
    assert not node.proxy_tables(), "kube-proxy's tables are left from an earlier run"
    node.write_configs(layout, tools, cluster.state.kubeconfig)
    dns.write_config(names, cluster.state.kubeconfig)
    logs = tmp_path / "node-logs"
    logs.mkdir()
    core = k8s.CoreV1Api(cluster.api)
    try:
        with ExitStack() as stack:
            stack.callback(node.unmount_all, layout.root)
            stack.callback(node.remove_rules, firewall)  # after kubelet and kube-proxy stopped
            _start_node(stack, cluster, layout, tools, logs)
            _start_services(stack, cluster, layout, names, tools, logs)
            yield layout
    finally:
        if created_bridge:
            network.remove_bridge()
        if _exists(core):
            core.delete_node(node.NAME)
    assert str(layout.root) not in Path("/proc/mounts").read_text()
    assert node.tables() == firewall
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, check=True).stdout
    assert "KUBE-" not in ruleset and "kube-proxy" not in ruleset, ruleset
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True, check=True).stdout
    assert "veth" not in links, links


def _start_node(
    stack: ExitStack, cluster: Cluster, layout: node.NodeLayout, tools: dict[str, Path], logs: Path
) -> None:
    """Start the runtime with the images loaded, then kubelet (tainted: only this module's pods
    land), until the node is Ready.
    """
    env = node.runtime_env(tools)
    containerd = stack.enter_context(_process(node.containerd_argv(layout, tools), logs / "containerd.log", env))
    node.wait_socket(layout, 60, lambda: _alive(containerd, logs / "containerd.log"))
    index = read_index(REPO_ROOT / ".tools" / "images")
    node.import_images(layout, tools, [REPO_ROOT / ".tools" / "images" / index[name]["archive"] for name in IMAGES])
    argv = [
        *node.kubelet_argv(layout, tools, cluster.state.kubeconfig),
        f"--register-with-taints={TAINT}=true:NoSchedule",
    ]
    kubelet = stack.enter_context(_process(argv, logs / "kubelet.log", env))
    core = k8s.CoreV1Api(cluster.api)
    wait_until(lambda: _ready(core, kubelet, logs / "kubelet.log"), 120, "the real node to be Ready")


def _start_services(
    stack: ExitStack,
    cluster: Cluster,
    layout: node.NodeLayout,
    names: dns.DnsLayout,
    tools: dict[str, Path],
    logs: Path,
) -> None:
    """kube-proxy, then CoreDNS behind the `kube-dns` Service."""
    proxy = stack.enter_context(_process(node.kube_proxy_argv(layout, tools), logs / "kube-proxy.log"))
    wait_until(lambda: _serves_services(proxy, logs / "kube-proxy.log"), 60, "kube-proxy to program Services")
    coredns = find_tool(dns.BINARY)
    assert coredns is not None
    resolver = stack.enter_context(_process(dns.argv(names, coredns), logs / "coredns.log"))
    wait_until(lambda: _answers(resolver, names, logs / "coredns.log"), 60, "CoreDNS to be ready")
    stack.callback(dns.unpublish, cluster.api)
    dns.publish(cluster.api, names)


def _alive(proc: subprocess.Popen, log: Path) -> None:
    if proc.poll() is not None:
        raise AssertionError(f"exited {proc.returncode}: {log.read_text()[-2000:]}")


def _serves_services(proxy: subprocess.Popen, log: Path) -> bool:
    """kube-proxy wrote the `kubernetes` Service's ClusterIP into its table."""
    _alive(proxy, log)
    if "ip kube-proxy" not in node.proxy_tables():
        return False
    shown = subprocess.run(["nft", "list", "table", "ip", "kube-proxy"], capture_output=True, text=True).stdout
    return network.API_SERVICE_IP in shown


def _answers(resolver: subprocess.Popen, names: dns.DnsLayout, log: Path) -> bool:
    """CoreDNS's `ready` plugin answers 200 once the kubernetes plugin has synced."""
    _alive(resolver, log)
    try:
        with urllib.request.urlopen(names.ready_url, timeout=2) as answer:
            return answer.status == 200
    except OSError:
        return False


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


def _with_service_account(pod: dict) -> dict:
    """The projected token, CA and namespace the ServiceAccount admission plugin mounts on a
    cluster (it is off on the local one: the agent requests tokens itself).
    """
    sources = [
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3607}},
        {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
        {"downwardAPI": {"items": [{"path": "namespace", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
    ]
    spec = pod["spec"]
    spec["serviceAccountName"] = "default"
    spec["volumes"].append({"name": "kube-api-access", "projected": {"sources": sources}})
    for container in spec["containers"]:
        mount = {"name": "kube-api-access", "mountPath": SERVICE_ACCOUNT, "readOnly": True}
        container["volumeMounts"].append(mount)
    return pod


def _run(core: k8s.CoreV1Api, namespace: str, pod: dict, services: tuple[dict, ...] = ()) -> k8s.V1Pod:
    """Create `pod` (after `services`) in a namespace of its own and wait until it finished."""
    core.create_namespace({"metadata": {"name": namespace}})
    for service in services:
        core.create_namespaced_service(namespace, service)
    return _finish(core, namespace, pod)


def _finish(core: k8s.CoreV1Api, namespace: str, pod: dict) -> k8s.V1Pod:
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


def test_real_node_pod_reaches_the_api_server_by_service_and_name(cluster: Cluster, real_node: node.NodeLayout):
    """As Argo's executor does: in-cluster config, through the `kubernetes` Service's ClusterIP
    (kube-proxy), signed in with the pod's own ServiceAccount token, the certificate checked; and by
    the name `kubernetes.default.svc` (CoreDNS), as are a Service's short and full names.
    """
    core = k8s.CoreV1Api(cluster.api)
    namespace = "kiosk-real-node-api"
    client = _container(
        "api", "localhost/kiosk-steps:dev", ["python", "-c", IN_CLUSTER], {"cpu": "1", "memory": "256Mi"}
    )
    minio = {"metadata": {"name": "minio"}, "spec": {"ports": [{"name": "s3", "port": 9000}]}}
    try:
        pod = _run(core, namespace, _with_service_account(_hardened_pod("api", client)), (minio,))
        lines = _log(real_node, namespace, "api")
        assert pod.status.phase == "Succeeded", lines
        user = f"system:serviceaccount:{namespace}:default"
        minio_ip = core.read_namespaced_service("minio", namespace).spec.cluster_ip
        assert lines == [
            f"env {network.API_SERVICE_IP} {user}",
            f"dns {user}",
            f"kubernetes.default.svc.cluster.local {network.API_SERVICE_IP}",
            f"minio {minio_ip}",
            f"minio.{namespace}.svc.cluster.local {minio_ip}",
            "outside no answer",
        ]
    finally:
        _delete(core, namespace)


def test_real_node_pod_reaches_the_object_store_by_its_service_name(cluster: Cluster, real_node: node.NodeLayout):
    """In the local env's namespace, with the artifact repository's Secret: an object written
    through `minio:9000` and read through `minio.<ns>.svc.cluster.local:9000` is in the emulator
    that `kiosk cluster up` started.
    """
    core = k8s.CoreV1Api(cluster.api)
    namespace = load_config("local").namespace
    store = objectstore.load(cluster.state)
    assert store is not None
    client = _container(
        "s3", "localhost/kiosk-steps:dev", ["python", "-c", OBJECT_STORE], {"cpu": "1", "memory": "256Mi"}
    )
    secret = {"name": objectstore.SECRET}
    client["env"] = [
        {"name": "NAMESPACE", "value": namespace},
        {"name": "BUCKET", "value": store.bucket},
        {"name": "AWS_DEFAULT_REGION", "value": "us-east-1"},
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": {"secretKeyRef": {**secret, "key": "accessKey"}}},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {**secret, "key": "secretKey"}}},
    ]
    try:
        pod = _finish(core, namespace, _hardened_pod("real-node-s3", client))
        lines = _log(real_node, namespace, "s3")
        assert pod.status.phase == "Succeeded", lines
        assert lines == ["from real-node-s3"]
        with urllib.request.urlopen(f"{store.endpoint}/{store.bucket}/real-node/hello.txt") as read:
            assert read.read() == b"from real-node-s3"  # in the emulator itself, seen from the host
    finally:
        core.delete_namespaced_pod("real-node-s3", namespace)
        wait_until(lambda: not _named(core, namespace, "real-node-s3"), 120, "the s3 pod to be deleted")


def test_real_node_service_balances_across_two_pods(cluster: Cluster, real_node: node.NodeLayout):
    """A ClusterIP Service with a selector: the EndpointSlice controller lists both pods once
    their readiness probes pass, and kube-proxy sends new connections to each of them.
    """
    core = k8s.CoreV1Api(cluster.api)
    namespace = "kiosk-real-node-lb"
    echo = {
        "metadata": {"name": "echo"},
        "spec": {"selector": {"app": "echo"}, "ports": [{"port": 80, "targetPort": 8080}]},
    }
    core.create_namespace({"metadata": {"name": namespace}})
    try:
        core.create_namespaced_service(namespace, echo)
        for name in ("echo-a", "echo-b"):
            server = _container(
                "echo", "localhost/kiosk-steps:dev", ["python", "-c", ECHO_SERVER], {"cpu": "250m", "memory": "128Mi"}
            )
            server["readinessProbe"] = {"httpGet": {"path": "/", "port": 8080}, "periodSeconds": 1}
            pod = _hardened_pod(name, server)
            pod["metadata"]["labels"] = {"app": "echo"}
            core.create_namespaced_pod(namespace, pod)
        discovery = k8s.DiscoveryV1Api(cluster.api)
        wait_until(lambda: _ready_endpoints(discovery, namespace, "echo") == 2, 180, "both echo pods to be ready")
        client = _container(
            "client", "localhost/kiosk-steps:dev", ["python", "-c", ECHO_CLIENT], {"cpu": "250m", "memory": "128Mi"}
        )
        pod = _finish(core, namespace, _hardened_pod("client", client))
        lines = _log(real_node, namespace, "client")
        assert pod.status.phase == "Succeeded", lines
        assert lines == ["echo-a echo-b"]
    finally:
        _delete(core, namespace)


def _named(core: k8s.CoreV1Api, namespace: str, name: str) -> bool:
    return any(p.metadata.name == name for p in core.list_namespaced_pod(namespace).items)


def _ready_endpoints(discovery: k8s.DiscoveryV1Api, namespace: str, service: str) -> int:
    slices = discovery.list_namespaced_endpoint_slice(namespace, label_selector=f"kubernetes.io/service-name={service}")
    return sum(1 for s in slices.items for e in s.endpoints or [] if e.conditions and e.conditions.ready)
