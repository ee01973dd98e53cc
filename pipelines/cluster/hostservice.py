"""A Service for a server that runs on the host, not in a pod: cluster DNS, the S3 emulator.

The Service has no selector; its one EndpointSlice, written here, points at the server's port on
`network.NODE_IP`, and kube-proxy routes the Service's ClusterIP there, as it does for the
`kubernetes` Service and the API server. So pods reach a host server by a name and a fixed port
(`minio:9000`), while the server itself listens on a port picked at `kiosk cluster up`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipelines.cluster import network

#: Who manages the EndpointSlice (not the EndpointSlice controller: the Service has no selector).
MANAGER = "kiosk-cluster"


@dataclass(frozen=True, kw_only=True)
class HostPort:
    name: str
    port: int  # the Service's
    target: int  # the host server's, on network.NODE_IP
    protocol: str = "TCP"


@dataclass(frozen=True, kw_only=True)
class HostService:
    name: str
    namespace: str
    ports: tuple[HostPort, ...]
    cluster_ip: str | None = None  # None: the API server allocates one
    labels: dict[str, str] | None = None

    def service(self) -> dict[str, Any]:
        spec: dict[str, Any] = {"ports": [{"name": p.name, "port": p.port, "protocol": p.protocol} for p in self.ports]}
        if self.cluster_ip:
            spec["clusterIP"] = self.cluster_ip
        return {"apiVersion": "v1", "kind": "Service", "metadata": self._metadata(self.labels or {}), "spec": spec}

    def endpoint_slice(self) -> dict[str, Any]:
        labels = {"kubernetes.io/service-name": self.name, "endpointslice.kubernetes.io/managed-by": MANAGER}
        return {
            "apiVersion": "discovery.k8s.io/v1",
            "kind": "EndpointSlice",
            "metadata": self._metadata(labels),
            "addressType": "IPv4",
            "endpoints": [{"addresses": [network.NODE_IP], "conditions": {"ready": True}}],
            "ports": [{"name": p.name, "port": p.target, "protocol": p.protocol} for p in self.ports],
        }

    def documents(self) -> list[dict[str, Any]]:
        return [self.service(), self.endpoint_slice()]

    def _metadata(self, labels: dict[str, str]) -> dict[str, Any]:
        return {"name": self.name, "namespace": self.namespace, "labels": labels}
