"""One real control plane for every real-controller test (session-scoped, so CI starts it once).

etcd + kube-apiserver + Argo's workflow-controller + the node agent running pods with argoexec,
in a workdir of its own; the `local` env's rendered tree is applied once. Missing binaries skip
these tests locally and fail them in CI (CI=true).
"""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client as k8s
from kubernetes.dynamic import DynamicClient

from pipelines.cluster import controlplane, kube, node, workflows
from pipelines.cluster import dns as cluster_dns
from pipelines.cluster.cli_apply import ensure_namespace, env_documents
from pipelines.cluster.components import argo_server as argo_server_component
from pipelines.cluster.components import real_node as real_node_component
from pipelines.cluster.state import ClusterState
from pipelines.tools import REPO_ROOT
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until

NAMESPACE = "kiosk-local"


@dataclass
class Cluster:
    workdir: Path
    state: ClusterState
    api: k8s.ApiClient
    start_s: float

    @property
    def dynamic(self) -> DynamicClient:
        return DynamicClient(self.api)

    def run(self, workflow: dict[str, Any], timeout_s: float = 240) -> dict[str, Any]:
        """Create a Workflow and wait until the controller says it is finished."""
        workflow.setdefault("metadata", {}).setdefault("namespace", NAMESPACE)
        created = workflows.create(self.api, workflow)
        return workflows.wait(self.api, created["metadata"]["namespace"], created["metadata"]["name"], timeout_s)

    def submit_template(
        self, name: str, parameters: dict[str, str] | None = None, timeout_s: float = 300
    ) -> dict[str, Any]:
        return self.run(workflows.from_template(name, NAMESPACE, parameters or {}), timeout_s)

    def nodes(self, workflow: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return {n["displayName"]: n for n in workflow["status"]["nodes"].values()}


def executor_namespace(dynamic: DynamicClient, name: str, extra: tuple[dict[str, Any], ...] = ()) -> None:
    """A namespace whose `default` ServiceAccount may do what Argo's executor must (create and patch
    WorkflowTaskResults), for upstream-style Workflows that name no ServiceAccount; plus `extra`.
    kube-controller-manager creates `default`, as on any cluster: this waits until it has.
    """
    rule = {"apiGroups": ["argoproj.io"], "resources": ["workflowtaskresults"], "verbs": ["create", "patch"]}
    rbac = "rbac.authorization.k8s.io"
    kube.apply(
        dynamic,
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "Role",
                "metadata": {"name": "executor", "namespace": name},
                "rules": [rule],
            },
            {
                "apiVersion": f"{rbac}/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "executor", "namespace": name},
                "roleRef": {"apiGroup": rbac, "kind": "Role", "name": "executor"},
                "subjects": [{"kind": "ServiceAccount", "name": "default", "namespace": name}],
            },
            *extra,
        ],
    )
    core = k8s.CoreV1Api(dynamic.client)
    wait_until(lambda: default_service_account(core, name), timeout=60, what=f"the default ServiceAccount in {name}")


def default_service_account(core: k8s.CoreV1Api, namespace: str) -> bool:
    found = core.list_namespaced_service_account(namespace, field_selector="metadata.name=default")
    return bool(found.items)


def container_workflow(generate_name: str, namespace: str, command: list[str]) -> dict[str, Any]:
    """A Workflow of one busybox container running `command` (the image is a name only here)."""
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": generate_name, "namespace": namespace},
        "spec": {
            "entrypoint": "main",
            "templates": [{"name": "main", "container": {"image": "busybox", "command": command}}],
        },
    }


def require_control_plane() -> None:
    for name in controlplane.BINARIES:
        require_tool(name)


def start(workdir: Path) -> Cluster:
    require_control_plane()
    begin = time.monotonic()
    state = controlplane.up(workdir)
    return Cluster(workdir, state, kube.api_client(str(state.kubeconfig)), time.monotonic() - begin)


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    from tests.cluster import cron_overlays

    running = start(tmp_path_factory.mktemp("cluster"))
    try:
        namespace, docs = env_documents("local")
        dynamic = running.dynamic
        ensure_namespace(dynamic, namespace, dry_run=False)
        rejected = [r for r in kube.apply(dynamic, docs, namespace=namespace) if r.result == "rejected"]
        assert not rejected, rejected
        cron_overlays.create(running)  # the controller's clock runs while the other tests do
        yield running
    finally:
        controlplane.down(running.workdir)


@dataclass
class ArgoServer:
    url: str  # https://127.0.0.1:PORT
    token: str  # the ServiceAccount token `kiosk cluster env` exports (without "Bearer ")
    env: dict[str, str]  # the environment after `eval "$(uv run kiosk cluster env)"`


@pytest.fixture(scope="session")
def argo_server(cluster: Cluster) -> ArgoServer:
    """argo-server added to the session's cluster (`up --with argo-server`), and the environment the
    newcomer's `eval "$(uv run kiosk cluster env)"` gives: run as written, through bash.
    """
    require_tool("argo")
    require_tool("uv")
    state = controlplane.up(cluster.workdir, components=["argo-server"])
    script = f'eval "$(uv run kiosk cluster env --workdir {shlex.quote(str(cluster.workdir))})" && env -0'
    out = subprocess.run(["bash", "-c", script], cwd=REPO_ROOT, capture_output=True, check=True, timeout=120)
    env = dict(item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    token = argo_server_component.token_path(state).read_text().strip()
    return ArgoServer(url=argo_server_component.url(state), token=token, env=env)


@dataclass(frozen=True)
class HostNetwork:
    """What the host's network and mounts look like: compared before the real node and after it."""

    ruleset: str  # nft list ruleset
    iptables: list[str]  # iptables-save rules and chains, without counters and comments
    links: list[str]  # interface names
    netns: list[str]
    mounts: list[str]

    @classmethod
    def now(cls) -> HostNetwork:
        def run(*argv: str) -> str:
            return subprocess.run(argv, capture_output=True, text=True, check=True).stdout

        saved = [line.split(" [")[0] for line in run("iptables-save").splitlines() if line[:1] in ":-"]
        links = [line.split(":")[1].strip().split("@")[0] for line in run("ip", "-o", "link").splitlines()]
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
        return cls(run("nft", "list", "ruleset"), saved, links, run("ip", "netns", "list").split(), mounts)


@pytest.fixture(scope="session")
def real_node(cluster: Cluster) -> Iterator[node.NodeLayout]:
    """The real node added to the session's cluster as a newcomer adds it (`kiosk cluster up --with
    node`); once `kiosk cluster down --only node` (what `down` does first) stopped it, the host's rules, interfaces,
    network namespaces and mounts are as before, and no pod cgroup or Node object is left.
    """
    for name in real_node_component.COMPONENT.binaries:
        require_tool(name)
    before = HostNetwork.now()
    kiosk(cluster, "up", "--with", real_node_component.NAME)
    try:
        yield real_node_component.layout(ClusterState.load(cluster.state.root))
    finally:
        stopped = kiosk(cluster, "down", "--only", real_node_component.NAME)
    assert stopped.split() == ["stopped:", "coredns,", "kube-proxy,", "kubelet,", "containerd,", "registry"]
    assert HostNetwork.now() == before
    assert not [d for d in node.CGROUP_ROOT.glob("*/kubepods*") if d.is_dir()]
    assert node.NAME not in [n.metadata.name for n in k8s.CoreV1Api(cluster.api).list_node().items]
    roles = k8s.RbacAuthorizationV1Api(cluster.api).list_cluster_role_binding().items
    assert cluster_dns.ROLE not in [r.metadata.name for r in roles]  # CoreDNS's grant goes with it


def kiosk(cluster: Cluster, *args: str) -> str:
    """`uv run kiosk cluster ARGS` on the session's cluster, as written; its stdout."""
    argv = ["uv", "run", "kiosk", "cluster", *args, "--workdir", str(cluster.workdir)]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout
