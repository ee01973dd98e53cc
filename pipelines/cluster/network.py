"""The local cluster's network on the real node: every address here is created on this machine.

- Pods: `POD_CIDR` on the Linux bridge `BRIDGE`, whose own address `NODE_IP` is the node's
  InternalIP and the gateway the CNI bridge plugin gives pods. Host-side servers that pods must
  reach (the API server, the S3 emulator, cluster DNS) listen on `NODE_IP`, never on 0.0.0.0.
- Services: `SERVICE_CIDR` (the API server's `--service-cluster-ip-range`); `kubernetes` is its
  first address, cluster DNS is `DNS_IP`.
- Pods get routes to these two ranges only, no default route, so nothing they send is routed off
  the machine; the host routes the Service range to the bridge too.

One real-node cluster per machine: the bridge and ranges are fixed, so a second one is refused.
"""

from __future__ import annotations

import ipaddress
import subprocess

BRIDGE = "kiosk0"
POD_CIDR = "10.244.0.0/24"
NODE_IP = "10.244.0.1"
SERVICE_CIDR = "10.0.0.0/24"
API_SERVICE_IP = "10.0.0.1"
DNS_IP = "10.0.0.10"
CLUSTER_DOMAIN = "cluster.local"


def bridge_exists() -> bool:
    return subprocess.run(["ip", "link", "show", BRIDGE], capture_output=True).returncode == 0


def ensure_bridge() -> bool:
    """Create `BRIDGE` with `NODE_IP` (idempotent), before anything binds that address; True when
    this call created it.
    """
    created = not bridge_exists()
    if created:
        _ip("link", "add", BRIDGE, "type", "bridge")
    prefix = ipaddress.ip_network(POD_CIDR).prefixlen
    shown = subprocess.run(["ip", "-o", "addr", "show", "dev", BRIDGE], capture_output=True, text=True).stdout
    if f" {NODE_IP}/" not in shown:
        _ip("addr", "add", f"{NODE_IP}/{prefix}", "dev", BRIDGE)
    _ip("link", "set", BRIDGE, "up")
    # The Service range through the bridge: the host's own connections to a ClusterIP (which
    # kube-proxy rewrites) never take the default route off the machine, even before kube-proxy
    # runs. Deleting the bridge deletes the route.
    _ip("route", "replace", SERVICE_CIDR, "dev", BRIDGE, "src", NODE_IP)
    return created


def remove_bridge() -> None:
    if bridge_exists():
        _ip("link", "delete", BRIDGE)


def listeners() -> list[str]:
    """The TCP sockets listening on `NODE_IP` (`ss` lines): a cluster still up on this machine."""
    shown = subprocess.run(["ss", "-Hltn", "src", NODE_IP], capture_output=True, text=True, check=True).stdout
    return shown.splitlines()


class NetworkError(RuntimeError):
    pass


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        reason = done.stderr.strip() or f"exit {done.returncode}"
        raise NetworkError(f"ip {' '.join(args)}: {reason} (the local cluster's network needs root)")
