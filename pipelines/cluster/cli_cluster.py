"""`kiosk cluster up | status | down`: the local control plane for the real Argo engine."""

from __future__ import annotations

import json
import shlex
import time
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipelines import project
from pipelines.cluster import controlplane, objectstore, optional
from pipelines.cluster.state import ClusterState, cluster_dir
from pipelines.config import load_config

app = typer.Typer(help="A local Kubernetes control plane running Argo's own workflow-controller.", no_args_is_help=True)
WorkdirOption = typer.Option(
    None, "--workdir", help="Workdir (default $KIOSK_WORKDIR or .kiosk); state in <workdir>/cluster"
)
WithOption = typer.Option(
    [],
    "--with",
    help="Optional components, comma-separated or repeated: "
    + "; ".join(f"{c.name}: {c.summary}" for c in optional.registry().values()),
)


def _pid(state: ClusterState, name: str) -> int | None:
    entry = state.pids.get(name)
    return entry[0] if entry else None


@app.command("up")
def up(workdir: Path | None = WorkdirOption, with_: list[str] = WithOption) -> None:
    """Start etcd, kube-apiserver, Argo's CRDs and workflow-controller, and the node agent (a no-op when up)."""
    console = Console(stderr=True)
    start = time.monotonic()
    before = ClusterState.load(cluster_dir(workdir))
    try:
        wanted = optional.select(with_)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--with") from None
    was_up = all(controlplane.running(before).values()) and all(optional.running(before, c) for c in wanted)
    try:
        with console.status("starting the cluster") as status:
            state = controlplane.up(workdir, lambda step: status.update(f"starting {step}"), [c.name for c in wanted])
    except (controlplane.ClusterError, RuntimeError, OSError, TimeoutError) as error:
        console.print(f"[red]kiosk cluster up: {error}[/red]")
        raise typer.Exit(1) from None
    verb = "already up" if was_up else f"up in {time.monotonic() - start:.1f} s"
    console.print(f"cluster {verb}; kubeconfig: {state.kubeconfig}")
    for component in wanted:  # its URLs, and how to use it (argocd: how to push a change)
        console.print("\n".join(component.describe(state)), markup=False, highlight=False, soft_wrap=True)
    typer.echo(f"export KUBECONFIG={state.kubeconfig}")


@app.command("status")
def status(
    workdir: Path | None = WorkdirOption,
    output: str = typer.Option("table", "-o", "--output", help="table | json"),
) -> None:
    """Each component's PID and whether it runs; exit 1 unless all of it runs."""
    state = ClusterState.load(cluster_dir(workdir))
    extra = optional.started(state)
    alive = controlplane.running(state) | {p: state.alive(p) for c in extra for p in c.processes}
    if output == "json":
        body = {"running": all(alive.values()), "kubeconfig": str(state.kubeconfig), "ports": state.ports}
        body["components"] = {n: {"pid": _pid(state, n), "running": up} for n, up in alive.items()}
        typer.echo(json.dumps(body, indent=1))
    else:
        table = Table("component", "pid", "state")
        for name in alive:
            table.add_row(name, str(_pid(state, name) or "-"), "running" if alive[name] else "stopped")
        Console().print(table)
        if state.ports.get("apiserver"):
            typer.echo(f"apiserver {controlplane.api_url(state)}  kubeconfig {state.kubeconfig}")
        if state.ports.get("controller-metrics"):
            typer.echo(f"controller metrics {controlplane.metrics_url(state)}")
        store = objectstore.load(state)
        if store is not None and state.ports.get(objectstore.NAME):
            typer.echo(f"S3 emulator {store.endpoint}  artifact bucket {store.bucket}")
        for component in extra:
            if optional.running(state, component):
                typer.echo("\n".join(component.describe(state)))
    if not all(alive.values()):
        raise typer.Exit(1)


OnlyOption = typer.Option(
    [],
    "--only",
    help="Stop only these optional components (comma-separated or repeated); the rest keeps running.",
)


@app.command("down")
def down(workdir: Path | None = WorkdirOption, only: list[str] = OnlyOption) -> None:
    """Stop every process the cluster started (data stays under <workdir>/cluster)."""
    if only:
        try:
            stopped = controlplane.down_components(workdir, only)
        except ValueError as error:
            raise typer.BadParameter(str(error), param_hint="--only") from None
        typer.echo(f"stopped: {', '.join(stopped)}" if stopped else f"{', '.join(only)} was not running")
        return
    stopped = controlplane.down(workdir)
    typer.echo(f"stopped: {', '.join(stopped)}" if stopped else "cluster was not running")


@app.command("env")
def env(workdir: Path | None = WorkdirOption) -> None:
    """Print the exports that point `argo`, `kubectl` and Hera at this cluster: `eval "$(kiosk cluster env)"`.

    KUBECONFIG, PATH (with .tools/bin) and ARGO_NAMESPACE (the local env's), plus what each running
    optional component adds (argo-server: ARGO_SERVER, ARGO_TOKEN, ARGO_SECURE, ARGO_INSECURE_SKIP_VERIFY).
    Exit 1 when the cluster is not running.
    """
    state = ClusterState.load(cluster_dir(workdir))
    if not all(controlplane.running(state).values()):
        Console(stderr=True).print("[red]kiosk cluster env: the cluster is not running: `kiosk cluster up`[/red]")
        raise typer.Exit(1)
    exports = {"KUBECONFIG": str(state.kubeconfig), "ARGO_NAMESPACE": load_config("local").namespace}
    for component in optional.started(state):
        if optional.running(state, component):
            exports |= component.env(state)
    tools = project.tools_bin()
    if tools is not None:
        typer.echo(f'export PATH={shlex.quote(str(tools))}:"$PATH"')
    for name, value in exports.items():
        typer.echo(f"export {name}={shlex.quote(value)}")
