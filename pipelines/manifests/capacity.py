"""GPU capacity objects for `argocd/cluster/<env>/`: a Karpenter NodePool that scales GPU nodes from and
to zero, an example EC2NodeClass, and the NVIDIA GPU operator's time-slicing ConfigMap for serving.

The NodePool's taint is the one our infer pods tolerate and its labels are the ones their node
selector asks for (both from `gpu.*`), so Karpenter knows a new node from this pool will take a
pending infer pod. `consolidationPolicy: WhenEmpty` with a short `consolidateAfter` removes a GPU
node once no pod but daemons is left on it: after a run, the pool is back to zero nodes.
"""

from __future__ import annotations

from typing import Any

from pipelines.config import KioskConfig
from pipelines.config.model import Toleration

KARPENTER_GROUP = "karpenter.sh"
NODE_CLASS_GROUP = "karpenter.k8s.aws"
DEVICE_PLUGIN_CONFIG_LABEL = "nvidia.com/device-plugin.config"
LABELS = {"app.kubernetes.io/part-of": "kiosk"}


def taints(cfg: KioskConfig) -> list[dict[str, str]]:
    """One taint per NoSchedule/NoExecute toleration of the infer pods (value `true` when it matches Exists)."""
    found = []
    for tol in cfg.gpu.tolerations:
        if tol.effect in ("NoSchedule", "NoExecute"):
            value = tol.value if tol.operator == "Equal" else "true"
            found.append({"key": tol.key, "value": value, "effect": tol.effect})
    return found


def tolerated(taint: dict[str, str], tolerations: list[Toleration]) -> bool:
    """Kubernetes' matching rule: key (and value for Equal) match, and the effect matches or is empty."""
    for tol in tolerations:
        if tol.key != taint["key"] or (tol.effect and tol.effect != taint["effect"]):
            continue
        if tol.operator == "Exists" or tol.value == taint.get("value", ""):
            return True
    return False


def node_pool(cfg: KioskConfig) -> dict[str, Any]:
    cap = cfg.capacity
    requirements = [
        {"key": "karpenter.k8s.aws/instance-family", "operator": "In", "values": list(cap.instance_families)},
        {"key": "karpenter.sh/capacity-type", "operator": "In", "values": list(cap.capacity_types)},
        {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]},
        {"key": "karpenter.k8s.aws/instance-gpu-manufacturer", "operator": "In", "values": ["nvidia"]},
    ]
    return {
        "apiVersion": f"{KARPENTER_GROUP}/v1",
        "kind": "NodePool",
        "metadata": {"name": cap.node_pool, "labels": LABELS},
        "spec": {
            "template": {
                "metadata": {"labels": {**cfg.gpu.node_selector, "kiosk.dev/pool": cap.node_pool}},
                "spec": {
                    "nodeClassRef": {"group": NODE_CLASS_GROUP, "kind": "EC2NodeClass", "name": cap.node_class.name},
                    "taints": taints(cfg),
                    "requirements": requirements,
                    "expireAfter": cap.expire_after,
                },
            },
            # The pool never holds more GPUs than this, whatever is pending: a cost ceiling.
            "limits": {cfg.gpu.resource: str(cap.max_gpus)},
            "disruption": {
                "consolidationPolicy": "WhenEmpty",
                "consolidateAfter": cap.consolidate_after,
                # Empty nodes may all go at once; running infer pods are never disrupted by consolidation
                # (WhenEmpty), and their karpenter.sh/do-not-disrupt annotation covers drift and expiry.
                "budgets": [{"nodes": "100%"}],
            },
        },
    }


def node_class(cfg: KioskConfig) -> dict[str, Any]:
    nc = cfg.capacity.node_class
    discovery = [{"tags": {"karpenter.sh/discovery": nc.discovery_tag}}]
    return {
        "apiVersion": f"{NODE_CLASS_GROUP}/v1",
        "kind": "EC2NodeClass",
        "metadata": {"name": nc.name, "labels": LABELS},
        "spec": {
            "role": nc.role,
            "amiSelectorTerms": [{"alias": nc.ami_alias}],
            "subnetSelectorTerms": discovery,
            "securityGroupSelectorTerms": discovery,
            "blockDeviceMappings": [
                {
                    "deviceName": "/dev/xvda",
                    # Room for the GPU image layers and the TensorRT engine cache.
                    "ebs": {"volumeSize": nc.volume_size, "volumeType": "gp3", "encrypted": True},
                }
            ],
            # IMDSv2 only, one hop: pods cannot reach the node role's credentials.
            "metadataOptions": {"httpTokens": "required", "httpPutResponseHopLimit": 1, "httpEndpoint": "enabled"},
            "tags": {"kiosk.dev/pool": cfg.capacity.node_pool},
        },
    }


def time_slicing(cfg: KioskConfig) -> dict[str, Any]:
    """The GPU operator's device-plugin configs, one per serving stage (select one with the node label
    `nvidia.com/device-plugin.config=<stage>`).
    """
    cap = cfg.capacity
    data = {}
    for stage, replicas in sorted(cap.time_slicing_replicas.items()):
        data[stage] = (
            "version: v1\n"
            "flags:\n"
            "  migStrategy: none\n"
            "sharing:\n"
            "  timeSlicing:\n"
            "    renameByDefault: false\n"
            "    failRequestsGreaterThanOne: true\n"
            "    resources:\n"
            f"      - name: {cfg.gpu.resource}\n"
            f"        replicas: {replicas}\n"
        )
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": cap.time_slicing_config_map, "namespace": cap.time_slicing_namespace, "labels": LABELS},
        "data": data,
    }


def build_all(cfg: KioskConfig) -> list[dict[str, Any]]:
    """Nothing for an environment without GPUs (`gpu.count: 0`, e.g. local)."""
    if cfg.gpu.count == 0:
        return []
    return [node_pool(cfg), node_class(cfg), time_slicing(cfg)]
