"""The real node's configs, read back as kubelet, containerd and CNI would read them."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
import yaml

from pipelines.cluster import dns, network, node


def _layout(tmp_path: Path) -> node.NodeLayout:
    return node.NodeLayout(
        root=tmp_path / "node",
        kubelet_port=10250,
        healthz_port=10248,
        proxy_healthz_port=10256,
        proxy_metrics_port=10249,
    )


KUBECONFIG = Path("/cluster/kubeconfig")
IDENTITY = node.NodeIdentity(
    kubelet_kubeconfig=Path("/cluster/node-kubelet.kubeconfig"),
    proxy_kubeconfig=Path("/cluster/kube-proxy.kubeconfig"),
    dns_kubeconfig=Path("/cluster/coredns.kubeconfig"),
    serving_cert=Path("/cluster/pki/node-kubelet.crt"),
    serving_key=Path("/cluster/pki/node-kubelet.key"),
    client_ca=Path("/cluster/pki/kubelet-client.crt"),
)


def _tools() -> dict[str, Path]:
    return {name: Path("/opt/bin") / name for name in node.BINARIES}


def test_node_configs_stay_on_the_node_network(tmp_path):
    layout = _layout(tmp_path)
    node.write_configs(layout, _tools(), IDENTITY)
    kubelet = yaml.safe_load((layout.root / "kubelet.yaml").read_text())
    assert kubelet["address"] == network.NODE_IP and kubelet["healthzBindAddress"] == "127.0.0.1"
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["clusterDNS"] == [network.DNS_IP] and kubelet["clusterDomain"] == network.CLUSTER_DOMAIN
    assert kubelet["readOnlyPort"] == 0 and kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authentication"]["x509"] == {"clientCAFile": str(IDENTITY.client_ca)}  # the API server only
    serving = (str(IDENTITY.serving_cert), str(IDENTITY.serving_key))
    assert (kubelet["tlsCertFile"], kubelet["tlsPrivateKeyFile"]) == serving
    cni = json.loads((layout.root / "cni" / "10-kiosk.conflist").read_text())
    bridge = cni["plugins"][0]
    assert bridge["bridge"] == network.BRIDGE and bridge["ipMasq"] is False
    assert bridge["ipam"]["ranges"] == [[{"subnet": network.POD_CIDR, "gateway": network.NODE_IP}]]
    assert bridge["ipam"]["routes"] == [{"dst": network.SERVICE_CIDR, "gw": network.NODE_IP}]  # no default route
    proxy = yaml.safe_load((layout.root / "kube-proxy.yaml").read_text())
    assert proxy["mode"] == "nftables" and proxy["nodePortAddresses"] == [f"{network.NODE_IP}/32"]
    assert proxy["healthzBindAddress"] == "127.0.0.1:10256" and proxy["metricsBindAddress"] == "127.0.0.1:10249"
    assert proxy["clientConnection"]["kubeconfig"] == str(IDENTITY.proxy_kubeconfig)


def test_node_containerd_config_parses_with_runc_on_cgroupfs(tmp_path):
    layout = _layout(tmp_path)
    node.write_configs(layout, _tools(), IDENTITY)
    config = tomllib.loads((layout.root / "containerd.toml").read_text())
    assert config["version"] == 3 and config["grpc"]["address"] == str(layout.socket)
    runtime = config["plugins"]["io.containerd.cri.v1.runtime"]
    assert runtime["containerd"]["runtimes"]["runc"]["options"] == {
        "SystemdCgroup": False,
        "BinaryName": "/opt/bin/runc",
    }
    assert config["plugins"]["io.containerd.cri.v1.images"]["pinned_images"]["sandbox"] == node.SANDBOX_IMAGE


def test_node_binaries_missing_names_the_install_script(monkeypatch):
    monkeypatch.setattr(node, "find_tool", lambda name: None if name == "runc" else Path("/opt/bin") / name)
    with pytest.raises(node.NodeError, match=r"not installed: runc.*45-node\.sh"):
        node.binaries()


def test_dns_listens_on_the_node_ip_behind_its_service(tmp_path):
    layout = dns.DnsLayout(root=tmp_path / "dns", port=40053, ready_port=40181)
    dns.write_config(layout, KUBECONFIG)
    corefile = layout.corefile.read_text()
    assert f".:{layout.port} {{" in corefile and f"bind {network.NODE_IP}" in corefile
    assert f"ready 127.0.0.1:{layout.ready_port}" in corefile and f"kubeconfig {KUBECONFIG}" in corefile
    assert "forward" not in corefile  # nothing leaves the machine
    service = dns.host_service(layout)
    assert service.service()["spec"]["clusterIP"] == network.DNS_IP
    assert {(p["port"], p["protocol"]) for p in service.service()["spec"]["ports"]} == {(53, "UDP"), (53, "TCP")}
    endpoints = service.endpoint_slice()
    assert endpoints["endpoints"][0]["addresses"] == [network.NODE_IP]
    assert {p["port"] for p in endpoints["ports"]} == {layout.port}
