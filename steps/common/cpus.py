"""How many CPUs this process may really use: the container's CPU limit where one is set.

Kubernetes enforces a pod's CPU limit with a CFS quota, not a CPU set, so the node's cores all stay
in the affinity mask and ONNX Runtime's default thread pool is sized for the whole node: on a
64-core node a pod limited to 4 CPUs would run 64 intra-op threads and spend its quota being
throttled. The quota is in cgroup v2's `cpu.max` ("<quota> <period>" or "max <period>") or cgroup
v1's `cpu.cfs_quota_us` / `cpu.cfs_period_us`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")


def quota_cpus(cgroup: Path | None = None) -> int | None:
    """The CPU limit of this process's cgroup, rounded up to whole CPUs; None where none is set."""
    cgroup = cgroup or CGROUP
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota == "max":
            return None
        return max(1, math.ceil(int(quota) / int(period)))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return max(1, math.ceil(quota_us / period_us)) if quota_us > 0 and period_us > 0 else None


def available() -> int:
    """CPUs this process may use: the cgroup's limit where one is set, else its affinity mask."""
    return quota_cpus() or len(os.sched_getaffinity(0))
