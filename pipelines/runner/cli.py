"""`kiosk run`: execute our rendered Argo YAML (or any Workflow manifest) on this machine."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from pipelines.runner import api, isolation, watch
from pipelines.runner.errors import RunnerError
from pipelines.runner.phase import Phase


class Output(StrEnum):
    table = "table"
    json = "json"


def parse_parameters(values: list[str]) -> dict[str, str]:
    out = {}
    for item in values:
        name, sep, value = item.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"expected name=value, got {item!r}", param_hint="-p")
        out[name] = value
    return out


def command(
    target: Annotated[
        str,
        typer.Argument(
            help="WorkflowTemplate/CronWorkflow/Workflow name in the env's rendered tree, or a manifest file."
        ),
    ],
    parameter: Annotated[
        list[str] | None, typer.Option("--parameter", "-p", help="Workflow parameter name=value.")
    ] = None,
    env: Annotated[str, typer.Option(help="Rendered tree to resolve names in: argocd/workflows/<env>/.")] = "local",
    output: Annotated[Output, typer.Option("--output", "-o", help="table: live tree; json: final Workflow.")] = (
        Output.table
    ),
    workdir: Annotated[Path | None, typer.Option(help="Logs, node files and the local store (default .kiosk/).")] = (
        None
    ),
    file: Annotated[
        list[Path] | None, typer.Option("--file", "-f", help="Extra manifests for templateRef lookups.")
    ] = None,
) -> None:
    """Run a workflow locally with Argo's semantics; exit 0 when it Succeeded, 1 otherwise."""
    try:
        workflow_run = api.prepare(
            target, env=env, files=file or [], parameters=parse_parameters(parameter or []), workdir=workdir
        )
    except RunnerError as error:
        typer.echo(f"kiosk run: error: {error}", err=True)
        raise typer.Exit(2) from None
    if output is Output.json:
        workflow = workflow_run.run()
        sys.stdout.write(json.dumps(workflow, indent=2) + "\n")
    else:
        console = Console(stderr=False)
        workflow = watch.watch(workflow_run, console)
        status = workflow["status"]
        console.print(f"[bold]{workflow['metadata']['name']}[/] {status['phase']} {status.get('message', '')}")
        console.print(f"logs: {workflow_run.run_dir / 'logs'}  (isolation: {isolation.method()})")
        # The entrypoint's own outputs too: Argo publishes no `globalName` of a root DAG's outputs.
        root = (status.get("nodes") or {}).get(workflow["metadata"]["name"]) or {}
        shown = set()
        for param in [
            *((status.get("outputs") or {}).get("parameters") or []),
            *((root.get("outputs") or {}).get("parameters") or []),
        ]:
            if param["name"] not in shown:
                shown.add(param["name"])
                console.print(f"output {param['name']} = {param['value']}")
    raise typer.Exit(0 if workflow["status"]["phase"] == Phase.SUCCEEDED else 1)
