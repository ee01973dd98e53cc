"""The `kiosk` command line. Each sub-command lives in its own module and exposes `command`."""

from __future__ import annotations

import sys

import typer

from pipelines import demo, lifecycle, lint, project, render
from pipelines.cluster import cli_apply, cli_cluster, cli_workflows
from pipelines.images import cli as cli_images
from pipelines.runner import cli as runner_cli

app = typer.Typer(
    name="kiosk",
    help="Batch GPU inference on Argo Workflows: render, lint and run the pipelines.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.command("render")(render.command)
app.command("lint")(lint.command)
app.command("run")(runner_cli.command)
app.command("demo")(demo.command)
app.command("lifecycle")(lifecycle.command)

# The real Argo engine on a local control plane (pipelines/cluster/).
app.add_typer(cli_cluster.app, name="cluster")
app.command("apply")(cli_apply.command)
app.command("submit")(cli_workflows.submit)
app.command("get")(cli_workflows.get)
app.command("logs")(cli_workflows.logs)
# The images the real node runs, built here (pipelines/images/).
app.add_typer(cli_images.app, name="images")


def main() -> None:
    """The installed `kiosk` script: a command that needs a checkout, run outside one, says so in one line."""
    try:
        app()
    except project.ProjectError as error:
        typer.echo(f"kiosk: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":  # pragma: no cover
    main()
