"""`kiosk submit`, `kiosk get`, `kiosk logs`: the `argo` CLI's everyday commands, on any cluster."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from rich.console import Console
from rich.live import Live
from rich.table import Table

from pipelines.cluster import kube, workflows
from pipelines.config import ConfigError, load_config
from pipelines.runner.cli import parse_parameters


class Output(StrEnum):
    table = "table"
    json = "json"


EnvOption = Annotated[str, typer.Option("--env", help="Environment: its namespace is used.")]
KubeconfigOption = Annotated[
    str | None, typer.Option("--kubeconfig", help="Default: $KUBECONFIG, ~/.kube/config, else the local cluster.")
]
ContextOption = Annotated[str | None, typer.Option("--context", help="kubeconfig context (default: current).")]
NamespaceOption = Annotated[str | None, typer.Option("-n", "--namespace", help="Default: the env's namespace.")]


def _fail(error: Exception) -> typer.Exit:
    message = getattr(error, "body", None) or str(error)
    typer.echo(f"kiosk: {message}", err=True)
    return typer.Exit(1)


def node_table(workflow: dict[str, Any]) -> Table:
    status = workflow.get("status") or {}
    title = f"{workflow['metadata']['name']}  {status.get('phase') or 'Pending'}  {status.get('message') or ''}"
    table = Table("node", "type", "phase", "started", "finished", "message", title=title)
    for node in sorted(status.get("nodes", {}).values(), key=lambda n: (n.get("startedAt") or "", n["id"])):
        phase = node.get("phase", "")
        style = {"Succeeded": "green", "Failed": "red", "Error": "red", "Running": "yellow"}.get(phase)
        table.add_row(
            node.get("displayName", ""),
            node.get("type", ""),
            phase,
            (node.get("startedAt") or "")[11:19],
            (node.get("finishedAt") or "")[11:19],
            node.get("message") or "",
            style=style,
        )
    return table


def submit(
    target: Annotated[
        str, typer.Argument(help="WorkflowTemplate name (as `--from workflowtemplate/NAME`) or a Workflow file.")
    ],
    parameter: Annotated[list[str], typer.Option("-p", "--parameter", help="name=value (repeatable).")] = [],  # noqa: B006
    env: EnvOption = "local",
    namespace: NamespaceOption = None,
    watch: Annotated[bool, typer.Option("--watch", help="Follow it live; exit 0 only if it Succeeded.")] = False,
    output: Annotated[
        Output, typer.Option("-o", "--output", help="json: print the final Workflow object.")
    ] = Output.table,
    timeout: Annotated[
        float | None, typer.Option("--timeout", help="With --watch: give up after this many seconds.")
    ] = None,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Create a Workflow from a WorkflowTemplate or a manifest file, like `argo submit`."""
    try:
        ns = namespace or load_config(env).namespace
        params = parse_parameters(parameter)
        path = Path(target)
        workflow = (
            workflows.from_file(path, ns, params)
            if path.suffix in {".yaml", ".yml"}
            else workflows.from_template(target, ns, params)
        )
        api = kube.api_client(kubeconfig, context)
        created = workflows.create(api, workflow)
        name = created["metadata"]["name"]
        if not watch:
            if output == Output.json:
                typer.echo(json.dumps(created, indent=2))
            else:
                typer.echo(f"submitted {ns}/{name}")
            return
        console = Console(stderr=output == Output.json)
        with Live(node_table(created), console=console, refresh_per_second=4) as live:
            final = workflows.wait(api, ns, name, timeout, lambda wf: live.update(node_table(wf)))
    except (ConfigError, ConfigException, ApiException, OSError, ValueError, TimeoutError) as error:
        raise _fail(error) from None
    if output == Output.json:
        typer.echo(json.dumps(final, indent=2))
    if final["status"]["phase"] != "Succeeded":
        raise typer.Exit(1)


def get(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    env: EnvOption = "local",
    namespace: NamespaceOption = None,
    output: Annotated[
        Output, typer.Option("-o", "--output", help="json: the Workflow object, as `argo get -o json`.")
    ] = Output.table,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Show a Workflow and its nodes, like `argo get`."""
    try:
        workflow = workflows.get(kube.api_client(kubeconfig, context), namespace or load_config(env).namespace, name)
    except (ConfigError, ConfigException, ApiException, OSError) as error:
        raise _fail(error) from None
    if output == Output.json:
        typer.echo(json.dumps(workflow, indent=2))
    else:
        Console(width=160).print(node_table(workflow))


def logs(
    name: Annotated[str, typer.Argument(help="Workflow name.")],
    env: EnvOption = "local",
    namespace: NamespaceOption = None,
    container: Annotated[str, typer.Option("-c", "--container", help="Container of each pod.")] = "main",
    follow: Annotated[
        bool,
        typer.Option("-f", "--follow", help="Stream the lines as pods write them until the workflow finishes."),
    ] = False,
    kubeconfig: KubeconfigOption = None,
    context: ContextOption = None,
) -> None:
    """Print each pod's log, prefixed with its node name, like `argo logs` (`-f`: `argo logs --follow`)."""
    try:
        api = kube.api_client(kubeconfig, context)
        ns = namespace or load_config(env).namespace
        if follow:
            workflows.follow(
                api, ns, name, lambda node, line: typer.echo(f"{node}: {line}"), container, kube.pods_root(kubeconfig)
            )
            return
        workflow = workflows.get(api, ns, name)
        for node, text in workflows.logs(api, workflow, container, kube.pods_root(kubeconfig)):
            for line in text.splitlines():
                typer.echo(f"{node}: {line}")
    except (ConfigError, ConfigException, ApiException, OSError) as error:
        raise _fail(error) from None
