"""`kiosk cluster up | status | down` on a cluster of its own: idempotent up, an optional component
(`--with argo-server`) added to a running cluster, loopback-only ports (the API server: the node
IP of the bridge `up` creates), and a down that leaves no process behind, not even a pod's process
that was still running, nor the bridge when this cluster created it.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import psutil
from kubernetes.dynamic import DynamicClient
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.cluster import controlplane, kube, network, workflows
from pipelines.cluster.state import COMPONENTS, ClusterState, cluster_dir
from tests.cluster.conftest import container_workflow, executor_namespace, require_control_plane
from tests.fixtures.tools import require_tool
from tests.fixtures.waiting import wait_until


def _listening(pids: set[int]) -> list[tuple[str, int, int]]:
    out = []
    for conn in psutil.net_connections(kind="inet"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            out.append((conn.laddr.ip, conn.laddr.port, conn.pid))
    return out


def _tree(pids: list[int]) -> set[int]:
    found = set()
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            found |= {pid, *(child.pid for child in proc.children(recursive=True))}
        except psutil.NoSuchProcess:
            pass
    return found


def _sleep_of(workdir: Path) -> psutil.Process | None:
    for proc in psutil.process_iter(["cmdline", "environ"]):
        cmdline = proc.info["cmdline"] or []
        if cmdline[-2:] == ["sleep", "300"] and (proc.info["environ"] or {}).get("KIOSK_WORKDIR") == str(workdir):
            return proc
    return None


def _wait_for_sleep(workdir: Path, timeout_s: float = 180) -> psutil.Process:
    return wait_until(lambda: _sleep_of(workdir), timeout_s, "the workflow's `sleep 300` to start", poll=0.5)


def test_up_status_down(tmp_path: Path) -> None:
    require_control_plane()
    runner = CliRunner()
    pids = _up_is_idempotent(runner, tmp_path)
    require_tool("argo")
    state = _argo_server_joins_a_running_cluster(runner, tmp_path, pids)
    _status_names_every_component(runner, tmp_path, pids, state)
    everything = _tree(list(pids.values()))
    _listens_on_loopback_only(everything, state)
    created = ClusterState.load(cluster_dir(tmp_path)).created
    assert network.bridge_exists() and created in ([], [network.BRIDGE]), created

    api = kube.api_client(str(state.kubeconfig))
    executor_namespace(DynamicClient(api), "lifecycle")
    workflows.create(api, container_workflow("sleeper-", "lifecycle", ["sleep", "300"]))
    sleeper = _wait_for_sleep(tmp_path)
    everything |= _tree(list(pids.values())) | {sleeper.pid}
    _down_leaves_no_process(runner, tmp_path, pids, everything)
    if created:  # no other cluster was up on this machine: its bridge goes with it
        assert not network.bridge_exists()


def _up_is_idempotent(runner: CliRunner, workdir: Path) -> dict[str, int]:
    """`up` twice: the second says "already up" and keeps every process; the components' pids."""
    begin = time.monotonic()
    result = runner.invoke(app, ["cluster", "up", "--workdir", str(workdir)])
    first_up_s = time.monotonic() - begin
    assert result.exit_code == 0, result.output
    state = ClusterState.load(cluster_dir(workdir))
    pids = {name: state.pids[name][0] for name in COMPONENTS}
    print(f"warm start: {first_up_s:.1f} s")

    again = runner.invoke(app, ["cluster", "up", "--workdir", str(workdir)])
    assert again.exit_code == 0 and "already up" in again.output, again.output
    assert {n: ClusterState.load(cluster_dir(workdir)).pids[n][0] for n in COMPONENTS} == pids
    return pids


def _argo_server_joins_a_running_cluster(runner: CliRunner, workdir: Path, pids: dict[str, int]) -> ClusterState:
    """`up --with argo-server` adds it (to `pids` too) while the core keeps running."""
    begin = time.monotonic()
    with_server = runner.invoke(app, ["cluster", "up", "--workdir", str(workdir), "--with", "argo-server"])
    print(f"argo-server added in {time.monotonic() - begin:.1f} s")
    assert with_server.exit_code == 0, with_server.output
    state = ClusterState.load(cluster_dir(workdir))
    assert {n: state.pids[n][0] for n in COMPONENTS} == pids  # the core kept running
    pids["argo-server"] = state.pids["argo-server"][0]
    return state


def _status_names_every_component(runner: CliRunner, workdir: Path, pids: dict[str, int], state: ClusterState) -> None:
    status = runner.invoke(app, ["cluster", "status", "--workdir", str(workdir), "-o", "json"])
    assert status.exit_code == 0, status.output
    body = json.loads(status.output)
    assert body["running"] and {n: c["pid"] for n, c in body["components"].items()} == pids
    table = runner.invoke(app, ["cluster", "status", "--workdir", str(workdir)])
    assert f"argo-server https://127.0.0.1:{state.ports['argo-server']}" in table.output, table.output
    assert f"S3 emulator http://{network.NODE_IP}:{state.ports['objectstore']}" in table.output, table.output


def _listens_on_loopback_only(everything: set[int], state: ClusterState) -> None:
    listening = _listening(everything)
    # Our builds bind the controller's /healthz and metrics, and argo-server, to 127.0.0.1 (upstream:
    # every interface); the agent's log endpoint is the node's kubelet port; the S3 emulator is
    # the local env's artifact repository (pipelines/cluster/objectstore.py).
    served = ("apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "controller-metrics")
    served += ("controller-healthz", "kubelet", "argo-server", "objectstore")
    assert {port for _, port, _ in listening} >= {state.ports[name] for name in served}, state.ports
    # The API server and the S3 emulator: on the node IP, where pods reach them
    # (pipelines/cluster/network.py).
    node_ip = {(network.NODE_IP, state.ports[name]) for name in ("apiserver", "objectstore")}
    wrong = [(ip, port) for ip, port, _ in listening if ip != "127.0.0.1" and (ip, port) not in node_ip]
    assert not wrong, f"listening beyond loopback: {wrong}"


def _down_leaves_no_process(runner: CliRunner, workdir: Path, pids: dict[str, int], everything: set[int]) -> None:
    """`down` stops every component and the pods' processes; `status` then exits 1."""
    down = runner.invoke(app, ["cluster", "down", "--workdir", str(workdir)])
    assert down.exit_code == 0, down.output
    assert set(down.output.removeprefix("stopped: ").strip().split(", ")) == set(pids)
    left = []
    for pid in everything:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                left.append(pid)
        except psutil.NoSuchProcess:
            pass
    assert not left, f"processes left behind: {left}"
    mine = [p.pid for p in psutil.process_iter(["cmdline"]) if str(workdir) in " ".join(p.info["cmdline"] or [])]
    assert not mine, f"processes still naming the workdir: {mine}"
    stopped = runner.invoke(app, ["cluster", "status", "--workdir", str(workdir)])
    assert stopped.exit_code == 1
    assert controlplane.down(workdir) == []
