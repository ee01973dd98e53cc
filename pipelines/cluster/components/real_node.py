"""The real node (`kiosk cluster up --with node`): a registry mirror, containerd, kubelet, kube-proxy
and CoreDNS join the running cluster as a second node, `kiosk-kubelet`, next to the agent's.

Its pods are containers of the images `kiosk images build` made (loaded into containerd at start,
and into the mirror every pull resolves at, `pipelines.cluster.registry`),
in their own network namespaces on the bridge of `pipelines.cluster.network`, reaching Services
through kube-proxy and names through CoreDNS (`pipelines.cluster.node`, `pipelines.cluster.dns`).
The node is tainted `kiosk.dev/real-node=true:NoSchedule`: the agent keeps running what does not
ask for the real node, and a pod (or a Workflow's `spec.tolerations` and `nodeSelector`) that
tolerates the taint and selects `kubernetes.io/hostname: kiosk-kubelet` runs there.

`down` stops its processes first, then kills what is left of its pods, unmounts what they mounted,
deletes kube-proxy's tables and kubelet's chains, and removes the Node object and the `kube-dns`
Service. One real node per machine: the ranges are fixed, so a second `--with node` is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from pipelines import tools as project_tools
from pipelines.cluster import controlplane, dns, network, node, registry
from pipelines.cluster.optional import Component, Context
from pipelines.cluster.state import ClusterState, free_port
from pipelines.images.archive import read_index
from pipelines.tools import find_tool

NAME = "node"
TAINT = "kiosk.dev/real-node"
#: Selects the real node and tolerates its taint: a pod's or a Workflow's spec takes these.
PLACEMENT = {
    "nodeSelector": {"kubernetes.io/hostname": node.NAME},
    "tolerations": [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}],
}
PORTS = (
    "registry",
    "node-kubelet",
    "node-healthz",
    "kube-proxy-healthz",
    "kube-proxy-metrics",
    "coredns",
    "coredns-ready",
)
READY_TIMEOUT_S = 120.0


def layout(state: ClusterState) -> node.NodeLayout:
    ports = state.ports
    return node.NodeLayout(
        root=state.root / "node",
        kubelet_port=ports["node-kubelet"],
        healthz_port=ports["node-healthz"],
        proxy_healthz_port=ports["kube-proxy-healthz"],
        proxy_metrics_port=ports["kube-proxy-metrics"],
    )


def dns_layout(state: ClusterState) -> dns.DnsLayout:
    return dns.DnsLayout(root=state.root / "dns", port=state.ports["coredns"], ready_port=state.ports["coredns-ready"])


def _firewall_path(state: ClusterState) -> Path:
    """The host's nftables tables before the node started: what `down` leaves in place."""
    return state.root / "node" / "firewall-before.json"


def _start(ctx: Context) -> None:
    state = ctx.state
    if node.proxy_tables():
        raise node.NodeError("kube-proxy's nftables tables exist: another real node runs on this machine")
    images = project_tools.REPO_ROOT / ".tools" / "images"  # at start: the CLI imports this outside a checkout too
    index = read_index(images)
    if not index:
        raise node.NodeError(f"no images in {images}: run `uv run kiosk images build`")
    tools = node.binaries()
    coredns = find_tool(dns.BINARY)
    assert coredns is not None  # controlplane checks COMPONENT.binaries first
    state.ports |= {name: free_port() for name in PORTS}
    where, names = layout(state), dns_layout(state)
    network.ensure_bridge()
    where.root.mkdir(parents=True, exist_ok=True)
    _firewall_path(state).write_text(json.dumps(sorted(node.tables())))
    identity = controlplane.node_identity(state)
    node.write_configs(where, tools, identity)
    dns.write_config(names, identity.dns_kubeconfig)
    env = node.runtime_env(tools)
    archives = [images / entry["archive"] for entry in index.values()]
    _start_registry(ctx, tools["crane"], where, archives)
    ctx.launch("containerd", node.containerd_argv(where, tools), env)
    node.wait_socket(where, 60, ctx.check_alive)
    node.import_images(where, tools, archives)
    taint = f"--register-with-taints={TAINT}=true:NoSchedule"
    kubelet = [*node.kubelet_argv(where, tools, identity.kubelet_kubeconfig), taint]
    ctx.launch("kubelet", kubelet, env)
    core = k8s.CoreV1Api(ctx.api)
    _poll(lambda: _node_ready(core), ctx.check_alive, "the real node to be Ready")
    ctx.launch("kube-proxy", node.kube_proxy_argv(where, tools), env)
    _poll(_serves_services, ctx.check_alive, "kube-proxy to program the kubernetes Service")
    dns.grant(ctx.api)
    ctx.launch("coredns", dns.argv(names, coredns), env)
    _poll(lambda: _answers(names), ctx.check_alive, "CoreDNS to be ready")
    dns.publish(ctx.api, names)


def _start_registry(ctx: Context, crane: Path, where: node.NodeLayout, archives: list[Path]) -> None:
    """The mirror every pull resolves at, holding the built images under their upstream names
    (its manifests live in memory: they are pushed again at each start).
    """
    port = ctx.state.ports["registry"]
    where.registry_blobs.mkdir(parents=True, exist_ok=True)
    registry.write_hosts(where.registry_hosts, port)
    ctx.launch("registry", registry.argv(crane, port, where.registry_blobs), dict(os.environ))
    registry.wait_ready(port, ctx.check_alive)
    for archive in archives:
        registry.push(crane, port, archive)


def _poll(ready: Callable[[], bool], check_alive: Callable[[], None], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        check_alive()
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {READY_TIMEOUT_S:.0f} s waiting for {what}")
        time.sleep(0.2)


def _node_ready(core: k8s.CoreV1Api) -> bool:
    found = core.list_node(field_selector=f"metadata.name={node.NAME}").items
    conditions = (found[0].status.conditions or []) if found else []
    return any(c.type == "Ready" and c.status == "True" for c in conditions)


def _serves_services() -> bool:
    """kube-proxy wrote the `kubernetes` Service's ClusterIP into its table."""
    return "ip kube-proxy" in node.proxy_tables() and network.API_SERVICE_IP in node.list_table("ip kube-proxy")


def _answers(names: dns.DnsLayout) -> bool:
    """CoreDNS's `ready` plugin answers 200 once its kubernetes plugin has synced."""
    try:
        with urllib.request.urlopen(names.ready_url, timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


def _cleanup(state: ClusterState, api: k8s.ApiClient | None) -> None:
    """After its processes stopped: what they leave behind on the host, then in the API."""
    where = state.root / "node"
    node.kill_pods()
    node.kill_shims(where / "containerd.sock")
    node.unmount_all(where)
    shutil.rmtree(where / "ipam", ignore_errors=True)  # addresses of pods that were killed, not torn down
    registry.clear(where / "registry")  # its manifests were in memory: the blobs alone are no use
    firewall = _firewall_path(state)
    node.remove_rules(set(json.loads(firewall.read_text())) if firewall.is_file() else node.tables())
    if api is None:
        return
    dns.unpublish(api)
    try:
        k8s.CoreV1Api(api).delete_node(node.NAME)
    except ApiException as error:
        if error.status != 404:
            raise


def _describe(state: ClusterState) -> list[str]:
    return [
        f"real node {node.NAME}: containerd, kubelet (taint {TAINT}), kube-proxy (nftables), "
        f"CoreDNS {network.DNS_IP}, registry mirror 127.0.0.1:{state.ports.get('registry')}; "
        f"pods {network.POD_CIDR}, Services {network.SERVICE_CIDR}"
    ]


COMPONENT = Component(
    name=NAME,
    summary="a real kubelet over containerd and runc, with kube-proxy and CoreDNS (tainted: pods opt in)",
    processes=("registry", "containerd", "kubelet", "kube-proxy", "coredns"),
    binaries=(*node.BINARIES, dns.BINARY),
    install=".ci/install.d/45-node.sh",
    start=_start,
    describe=_describe,
    cleanup=_cleanup,
)
