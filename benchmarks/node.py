"""The node agent against the real node (kubelet, containerd, runc): how long the same upstream
Workflows take on each, in one cluster, rounds interleaved.

    uv run python benchmarks/node.py --json [--rounds 3]

starts a cluster of its own as a newcomer does (`kiosk cluster up --with node`, `kiosk apply --env
local`, in a temporary workdir; `kiosk cluster down` at the end), then submits Argo's `hello-world`
(one pod) and `dag-diamond` (four pods, two of them in parallel) into `kiosk-local`, each on the
agent (the untainted default node) and placed on the real node, and prints one JSON line:

- `seconds`: submit to the phase Succeeded, seen by polling every 0.1 s (the controller's and the
  node's latency together), per case and round;
- `pod_seconds`: the pods' mean startedAt..finishedAt in the Workflow's status (1 s resolution);
- `real_vs_agent`: the real node's median over the agent's, per Workflow.

This is the measured cost of the real node's isolation (images, namespaces, cgroups, CNI) per pod,
the reason the agent stays as the fast mode of `kiosk cluster up` (docs/cluster.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import yaml  # noqa: E402

EXAMPLES = ("hello-world.yaml", "dag-diamond.yaml")
NAMESPACE = "kiosk-local"


def log(message: str) -> None:
    print(f"[node] {message}", file=sys.stderr, flush=True)


def kiosk(workdir: Path, *args: str) -> None:
    """One `kiosk` command as a user types it, on the benchmark's own workdir."""
    done = subprocess.run(
        ["uv", "run", "kiosk", *args],
        cwd=REPO,
        env={**os.environ, "KIOSK_WORKDIR": str(workdir)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    if done.returncode != 0:
        raise SystemExit(f"kiosk {' '.join(args)} failed: {done.stderr.strip()[-2000:]}")


def _seconds(a: str, b: str) -> float:
    parse = datetime.fromisoformat
    return (parse(b.replace("Z", "+00:00")) - parse(a.replace("Z", "+00:00"))).total_seconds()


def run_once(api, example: str, placed: bool) -> dict:
    from pipelines.argo_module import module_dir
    from pipelines.cluster import workflows
    from pipelines.cluster.components import real_node

    manifest = yaml.safe_load((module_dir() / "examples" / example).read_text())
    manifest["metadata"]["namespace"] = NAMESPACE
    if placed:
        manifest["spec"] |= real_node.PLACEMENT
    start = time.perf_counter()
    name = workflows.create(api, manifest)["metadata"]["name"]
    done = workflows.wait(api, NAMESPACE, name, 300, poll_s=0.1)
    seconds = time.perf_counter() - start
    if done["status"]["phase"] != "Succeeded":
        raise SystemExit(f"{example} on {'the real node' if placed else 'the agent'}: {done['status']}")
    pods = [n for n in done["status"]["nodes"].values() if n["type"] == "Pod"]
    return {
        "seconds": round(seconds, 3),
        "pod_seconds": round(statistics.mean(_seconds(p["startedAt"], p["finishedAt"]) for p in pods), 3),
        "pods": len(pods),
        "nodes": sorted({p["hostNodeName"] for p in pods}),
    }


def _default_account(api) -> None:
    """kube-controller-manager gives a new namespace its `default` ServiceAccount, which the
    upstream examples run as: wait for it (up to a minute).
    """
    from kubernetes import client as k8s

    core, deadline = k8s.CoreV1Api(api), time.monotonic() + 60
    while not core.list_namespaced_service_account(NAMESPACE, field_selector="metadata.name=default").items:
        if time.monotonic() > deadline:
            raise SystemExit(f"no default ServiceAccount in {NAMESPACE} after 60 s")
        time.sleep(0.2)


def measure(kubeconfig: Path, rounds: int) -> dict:
    from pipelines.cluster import kube

    api = kube.api_client(str(kubeconfig))
    _default_account(api)
    found: dict[str, list[dict]] = {}
    for r in range(rounds):
        for example in EXAMPLES:
            for placed in (False, True):
                case = f"{example.removesuffix('.yaml')}/{'real-node' if placed else 'agent'}"
                found.setdefault(case, []).append(run_once(api, example, placed))
                log(f"round {r + 1}: {case} {found[case][-1]['seconds']} s")
    return found


def summary(found: dict[str, list[dict]]) -> dict:
    median = {case: statistics.median(r["seconds"] for r in runs) for case, runs in found.items()}
    names = [example.removesuffix(".yaml") for example in EXAMPLES]
    return {
        "median_seconds": {case: round(value, 3) for case, value in median.items()},
        "real_vs_agent": {name: round(median[f"{name}/real-node"] / median[f"{name}/agent"], 3) for name in names},
        "rounds": found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print one JSON line (the default output)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; every round is quoted")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="kiosk-node-bench-", dir="/var/tmp"))
    start = time.perf_counter()
    from pipelines.cluster.state import ClusterState, cluster_dir

    kiosk(workdir, "cluster", "up", "--workdir", str(workdir), "--with", "node")
    log(f"cluster up with the real node in {time.perf_counter() - start:.1f} s ({workdir})")
    try:
        kubeconfig = ClusterState.load(cluster_dir(workdir)).kubeconfig
        kiosk(workdir, "apply", "--env", "local", "--kubeconfig", str(kubeconfig))
        result = summary(measure(kubeconfig, args.rounds))
    finally:
        kiosk(workdir, "cluster", "down", "--workdir", str(workdir))
    print(json.dumps({**result, "cpu_count": os.cpu_count(), "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
