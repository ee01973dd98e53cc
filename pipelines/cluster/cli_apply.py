"""`kiosk apply --env E [--dry-run=server]`: server-side apply of an env's rendered tree."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

import typer
import yaml
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from kubernetes.dynamic import DynamicClient
from rich.console import Console
from rich.table import Table

from pipelines import render
from pipelines.cluster import kube
from pipelines.config import ConfigError, load_config


class DryRun(StrEnum):
    none = "none"
    server = "server"


def env_documents(env: str) -> tuple[str, list[dict[str, Any]]]:
    """The env's namespace and its rendered objects (rendered now, as `kiosk render` would write them)."""
    namespace = load_config(env).namespace
    docs = [doc for text in render.render_env(env).values() for doc in yaml.safe_load_all(text) if doc]
    return namespace, docs


def ensure_namespace(dynamic: DynamicClient, namespace: str, dry_run: bool) -> kube.Applied:
    doc = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}}
    return kube.apply(dynamic, [doc], dry_run=dry_run)[0]


def _namespace_exists(dynamic: DynamicClient, namespace: str) -> bool:
    try:
        dynamic.resources.get(api_version="v1", kind="Namespace").get(name=namespace)
    except ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def command(
    env: Annotated[str, typer.Option("--env", help="Environment whose rendered tree to apply.")] = "local",
    dry_run: Annotated[
        DryRun, typer.Option("--dry-run", help="server: the API server validates, nothing is stored.")
    ] = DryRun.none,
    kubeconfig: Annotated[
        str | None, typer.Option("--kubeconfig", help="Default: $KUBECONFIG, ~/.kube/config, else the local cluster.")
    ] = None,
    context: Annotated[str | None, typer.Option("--context", help="kubeconfig context (default: current).")] = None,
) -> None:
    """Server-side apply of argocd/workflows/<env> (the namespace too); a table of objects and results."""
    try:
        namespace, docs = env_documents(env)
        dynamic = DynamicClient(kube.api_client(kubeconfig, context))
        server_dry = dry_run == DryRun.server
        if server_dry and not _namespace_exists(dynamic, namespace):
            typer.echo(
                f"kiosk apply --dry-run=server: namespace {namespace!r} does not exist on the cluster, so the API "
                "server cannot check the objects in it; create it first (`kiosk apply` without --dry-run does)",
                err=True,
            )
            raise typer.Exit(1)
        results = [ensure_namespace(dynamic, namespace, server_dry)]
        results += kube.apply(dynamic, docs, dry_run=server_dry, namespace=namespace)
    except (ConfigError, ConfigException, ApiException, OSError) as error:
        typer.echo(f"kiosk apply: {error}", err=True)
        raise typer.Exit(1) from None
    table = Table("kind", "namespace", "name", "result", "message", title=f"kiosk apply --env {env}")
    for item in results:
        style = "red" if item.result == "rejected" else None
        table.add_row(item.kind, item.namespace, item.name, item.result, item.message, style=style)
    Console(width=160).print(table)
    if any(item.result == "rejected" for item in results):
        raise typer.Exit(1)
