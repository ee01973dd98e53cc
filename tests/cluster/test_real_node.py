"""The real node (`kiosk cluster up --with node`: kubelet over containerd, runc and the CNI bridge,
kube-proxy, CoreDNS) runs the images built here as pods under the hardened securityContext the
rendered templates use, and its pods reach the API server, the object store and each other by
Service and name. It joins the session's cluster tainted, so that no other test's pod lands on it.
"""

from __future__ import annotations

import ipaddress
import subprocess
import urllib.request

import dns.resolver
import pytest
import yaml
from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipelines.cluster import controlplane, kube, network, node, objectstore, workflows
from pipelines.cluster import dns as cluster_dns
from pipelines.cluster.components import real_node as real_node_component
from pipelines.config import load_config
from tests.cluster.conftest import Cluster
from tests.fixtures import upstream_examples as upstream
from tests.fixtures.waiting import wait_until

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
            "tolerations": real_node_component.PLACEMENT["tolerations"],
            "securityContext": {"runAsUser": 10001, "runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
            "volumes": [{"name": "tmp", "emptyDir": {}}],
            "containers": list(containers),
        },
    }


def _with_service_account(pod: dict) -> dict:
    """The token, CA and namespace of `default`, mounted by the ServiceAccount admission plugin."""
    pod["spec"]["automountServiceAccountToken"] = True
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
        # Through the API server (pods/log), which checks kubelet's serving certificate: kubectl logs.
        assert core.read_namespaced_pod_log("probe", namespace, container="main").splitlines() == lines
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


def test_real_node_runs_an_upstream_workflow_with_artifacts(cluster: Cluster, real_node: node.NodeLayout):
    """Argo's own `artifact-passing` example, placed on the real node, as written otherwise: its
    `busybox` (`:latest`, so pulled Always) comes from the node's registry mirror; argoexec's init and
    wait containers run in each pod (in-cluster config through the ServiceAccount admission's token),
    the output artifact is uploaded to the local env's artifact repository and downloaded by the next
    step.
    """
    manifest = yaml.safe_load((upstream.examples_dir() / "artifact-passing.yaml").read_text())
    manifest["metadata"]["namespace"] = load_config("local").namespace
    manifest["spec"] |= real_node_component.PLACEMENT
    workflow = cluster.run(manifest)
    pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
    assert workflow["status"]["phase"] == "Succeeded", [(n["displayName"], n.get("message")) for n in pods]
    assert {n["hostNodeName"] for n in pods} == {node.NAME}
    assert len(pods) == 2
    passed = next(n for n in pods if n["displayName"] == "generate-artifact")["outputs"]["artifacts"]
    assert [a["name"] for a in passed if a["name"] != "main-logs"] == ["hello-art"]


#: The artifact examples tests/cluster/test_artifacts.py leaves out because the agent's pods share
#: the host's root filesystem; here each runs in its image's own, as on any cluster.
NEED_AN_IMAGE = (
    "artifact-passing-subpath.yaml",
    "conditional-artifacts.yaml",
    "dag-conditional-artifacts.yaml",
    "map-reduce.yaml",
)


@pytest.fixture(scope="module")
def image_examples(cluster: Cluster, real_node: node.NodeLayout) -> dict[str, dict]:
    """The four examples submitted together, placed on the real node, and waited on."""
    namespace = load_config("local").namespace
    names = {}
    for rel in NEED_AN_IMAGE:
        manifest = yaml.safe_load((upstream.examples_dir() / rel).read_text())
        manifest["metadata"]["namespace"] = namespace
        manifest["spec"] |= real_node_component.PLACEMENT
        names[rel] = workflows.create(cluster.api, manifest)["metadata"]["name"]
    return {rel: workflows.wait(cluster.api, namespace, name, 420) for rel, name in names.items()}


@pytest.mark.parametrize("rel", NEED_AN_IMAGE)
def test_real_node_runs_the_examples_that_need_an_image(image_examples: dict[str, dict], rel: str):
    """WORKDIR-relative outputs, a /tmp archived whole, /mnt/out made in the root filesystem: each
    example reaches Succeeded with all its pods on the real node and its output artifacts reported.
    """
    workflow = image_examples[rel]
    pods = [n for n in workflow["status"]["nodes"].values() if n["type"] == "Pod"]
    assert workflow["status"]["phase"] == "Succeeded", [(n["displayName"], n.get("message")) for n in pods]
    assert pods and {n["hostNodeName"] for n in pods} == {node.NAME}
    artifacts = [a for n in pods for a in (n.get("outputs") or {}).get("artifacts") or [] if a["name"] != "main-logs"]
    assert artifacts and all("s3" in a for a in artifacts), (rel, artifacts)


def test_real_node_kubelet_signs_in_as_its_node(cluster: Cluster, real_node: node.NodeLayout):
    """The kubelet is `system:node:kiosk-kubelet` in `system:nodes`, so the Node authorizer lets it
    read only what the pods bound to it need: a Secret no pod names is refused.
    """
    identity = controlplane.node_identity(cluster.state)
    kubelet = kube.api_client(str(identity.kubelet_kubeconfig))
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    user = k8s.AuthenticationV1Api(kubelet).create_self_subject_review(review).status.user_info
    assert (user.username, "system:nodes" in user.groups) == (f"system:node:{node.NAME}", True)
    namespace = load_config("local").namespace
    secret = {"metadata": {"name": "real-node-unnamed"}, "stringData": {"key": "value"}}
    core = k8s.CoreV1Api(cluster.api)
    core.create_namespaced_secret(namespace, secret)
    try:
        with pytest.raises(ApiException) as refused:
            k8s.CoreV1Api(kubelet).read_namespaced_secret("real-node-unnamed", namespace)
        assert refused.value.status == 403
    finally:
        core.delete_namespaced_secret("real-node-unnamed", namespace)


def _allowed(auth: k8s.AuthorizationV1Api, user: str, verb: str, resource: str, group: str = "") -> bool:
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {"user": user, "resourceAttributes": {"verb": verb, "resource": resource, "group": group}},
    }
    return bool(auth.create_subject_access_review(review).status.allowed)


def test_real_node_coredns_signs_in_as_its_own_user_with_only_what_it_watches(
    cluster: Cluster, real_node: node.NodeLayout
):
    """The Corefile names CoreDNS's own kubeconfig, whose token is the `coredns` user's; RBAC lets
    that user list and watch Services, EndpointSlices and namespaces, and nothing else asked here.
    """
    identity = controlplane.node_identity(cluster.state)
    corefile = (cluster.state.root / "dns" / "Corefile").read_text()
    assert f"kubeconfig {identity.dns_kubeconfig}\n" in corefile
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    coredns = kube.api_client(str(identity.dns_kubeconfig))
    user = cluster_dns.USER
    assert k8s.AuthenticationV1Api(coredns).create_self_subject_review(review).status.user_info.username == user
    auth = k8s.AuthorizationV1Api(cluster.api)
    for verb in ("list", "watch"):
        assert _allowed(auth, user, verb, "services") and _allowed(auth, user, verb, "namespaces")
        assert _allowed(auth, user, verb, "endpointslices", "discovery.k8s.io")
    refused = [("get", "secrets", ""), ("list", "pods", ""), ("create", "services", ""), ("list", "nodes", "")]
    assert [r for r in refused if _allowed(auth, user, *r)] == []


def test_real_node_host_reaches_a_service_by_name_through_cluster_dns(cluster: Cluster, real_node: node.NodeLayout):
    """From the host, as docs/cluster.md shows: cluster DNS at its ClusterIP answers a Service's full
    name, and the Service's ClusterIP answers (kube-proxy rewrites the host's connections too), over
    the route `up` gives the Service range through the bridge, not the default route.
    """
    namespace = load_config("local").namespace
    store = objectstore.load(cluster.state)
    assert store is not None
    resolver = dns.resolver.Resolver(configure=False)
    resolver.nameservers = [network.DNS_IP]
    answer = resolver.resolve(f"minio.{namespace}.svc.{network.CLUSTER_DOMAIN}", "A")
    minio_ip = k8s.CoreV1Api(cluster.api).read_namespaced_service("minio", namespace).spec.cluster_ip
    assert [a.address for a in answer] == [minio_ip]
    route = subprocess.run(["ip", "route", "get", minio_ip], capture_output=True, text=True, check=True).stdout
    assert f"dev {network.BRIDGE}" in route, route
    key = f"{store.bucket}/real-node/from-host.txt"
    put = urllib.request.Request(f"{store.endpoint}/{key}", data=b"through the Service", method="PUT")
    urllib.request.urlopen(put, timeout=10).close()  # gofakes3 takes unsigned requests
    with urllib.request.urlopen(f"http://{minio_ip}:9000/{key}", timeout=10) as read:
        assert read.read() == b"through the Service"
