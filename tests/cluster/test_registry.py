"""The real node's registry mirror: a real `crane registry serve` on 127.0.0.1 takes the built
images under their upstream names, and containerd's hosts.toml sends every pull there.
"""

from __future__ import annotations

import subprocess
import tomllib
import urllib.request
from pathlib import Path

import pytest

from pipelines.cluster import node, registry
from pipelines.cluster.state import free_port
from pipelines.images.archive import read_index
from pipelines.tools import REPO_ROOT, find_tool
from tests.fixtures.tools import require_tool

IMAGES = REPO_ROOT / ".tools" / "images"


def test_registry_hosts_resolve_every_mirrored_registry_locally(tmp_path: Path) -> None:
    registry.write_hosts(tmp_path, 5000)
    for host in registry.MIRRORED:
        hosts = tomllib.loads((tmp_path / host / "hosts.toml").read_text())
        assert hosts["server"] == "http://127.0.0.1:5000"  # the fallback too: no pull leaves the machine
        assert hosts["host"] == {"http://127.0.0.1:5000": {"capabilities": ["pull", "resolve"]}}


def test_registry_mirrored_path_keeps_upstream_names_only() -> None:
    assert registry.mirrored_path("docker.io/library/busybox:latest") == "library/busybox:latest"
    assert registry.mirrored_path("quay.io/argoproj/argoexec:v4.1.4") == "argoproj/argoexec:v4.1.4"
    assert registry.mirrored_path("localhost/kiosk-steps:dev") is None  # imported, never pulled


def test_registry_containerd_reads_the_hosts_directory(tmp_path: Path) -> None:
    layout = node.NodeLayout(root=tmp_path, kubelet_port=1, healthz_port=2, proxy_healthz_port=3, proxy_metrics_port=4)
    config = tomllib.loads(node.containerd_config(layout, Path("/opt/bin/runc")))
    assert config["plugins"]["io.containerd.cri.v1.images"]["registry"] == {"config_path": str(tmp_path / "certs.d")}


def test_registry_serves_a_pushed_stand_in_under_each_of_its_names(tmp_path: Path) -> None:
    require_tool("crane")
    index = read_index(IMAGES)
    if "busybox" not in index:
        pytest.fail(f"no busybox image in {IMAGES}: run `uv run kiosk images build`")
    crane = find_tool("crane")
    assert crane is not None
    port = free_port()
    blobs = tmp_path / "blobs"
    blobs.mkdir()
    server = subprocess.Popen(registry.argv(crane, port, blobs), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        registry.wait_ready(port, lambda: None)
        pushed = registry.push(crane, port, IMAGES / index["busybox"]["archive"])
        assert sorted(pushed) == sorted(index["busybox"]["references"])
        accept = {"Accept": "application/vnd.oci.image.manifest.v1+json"}
        for reference in pushed:
            mirrored = registry.mirrored_path(reference)
            assert mirrored is not None
            path, tag = mirrored.rsplit(":", 1)
            url = f"http://127.0.0.1:{port}/v2/{path}/manifests/{tag}?ns=docker.io"  # as containerd asks
            with urllib.request.urlopen(urllib.request.Request(url, headers=accept), timeout=10) as answer:
                assert answer.headers["Docker-Content-Digest"] == index["busybox"]["digest"]
    finally:
        server.terminate()
        server.wait(timeout=30)
