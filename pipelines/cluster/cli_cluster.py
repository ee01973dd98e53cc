"""`kiosk cluster up | status | down`: the local control plane for the real Argo engine."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipelines.cluster import argocd, controlplane
from pipelines.cluster.state import ClusterState, cluster_dir

app = typer.Typer(help="A local Kubernetes control plane running Argo's own workflow-controller.", no_args_is_help=True)
WorkdirOption = typer.Option(
    None, "--workdir", help="Workdir (default $KIOSK_WORKDIR or .kiosk); state in <workdir>/cluster"
)


def _pid(state: ClusterState, name: str) -> int | None:
    entry = state.pids.get(name)
    return entry[0] if entry else None


WithOption = typer.Option("", "--with", help="Optional components, comma-separated: argocd")


@app.command("up")
def up(workdir: Path | None = WorkdirOption, with_: str = WithOption) -> None:
    """Start etcd, kube-apiserver, Argo's CRDs and workflow-controller, and the node agent (a no-op when up)."""
    console = Console(stderr=True)
    start = time.monotonic()
    was_up = all(controlplane.running(ClusterState.load(cluster_dir(workdir))).values())
    try:
        with console.status("starting the cluster") as status:
            state = controlplane.up(workdir, lambda step: status.update(f"starting {step}"))
            if "argocd" in with_.split(","):
                console.print(argocd.push_hint(argocd.start(state, progress=status.update)))
    except (controlplane.ClusterError, RuntimeError, OSError, TimeoutError) as error:
        console.print(f"[red]kiosk cluster up: {error}[/red]")
        raise typer.Exit(1) from None
    verb = "already up" if was_up else f"up in {time.monotonic() - start:.1f} s"
    console.print(f"cluster {verb}; kubeconfig: {state.kubeconfig}")
    typer.echo(f"export KUBECONFIG={state.kubeconfig}")


@app.command("status")
def status(
    workdir: Path | None = WorkdirOption,
    output: str = typer.Option("table", "-o", "--output", help="table | json"),
) -> None:
    """Each component's PID and whether it runs; exit 1 unless all of it runs."""
    state = ClusterState.load(cluster_dir(workdir))
    alive = {**controlplane.running(state), **{n: a for n, a in argocd.status(state).items() if n in state.pids}}
    if output == "json":
        body = {"running": all(alive.values()), "kubeconfig": str(state.kubeconfig), "ports": state.ports}
        body["components"] = {n: {"pid": _pid(state, n), "running": alive[n]} for n in alive}
        typer.echo(json.dumps(body, indent=1))
    else:
        table = Table("component", "pid", "state")
        for name in alive:
            table.add_row(name, str(_pid(state, name) or "-"), "running" if alive[name] else "stopped")
        Console().print(table)
        if state.ports.get("apiserver"):
            typer.echo(f"apiserver https://127.0.0.1:{state.ports['apiserver']}  kubeconfig {state.kubeconfig}")
        if state.ports.get("controller-metrics"):
            typer.echo(f"controller metrics {controlplane.metrics_url(state)}")
    if not all(alive.values()):
        raise typer.Exit(1)


@app.command("down")
def down(workdir: Path | None = WorkdirOption) -> None:
    """Stop every process the cluster started (data stays under <workdir>/cluster)."""
    stopped = controlplane.down(workdir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "cluster was not running")
