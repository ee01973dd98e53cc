"""The `kiosk` command line. Each sub-command lives in its own module and exposes `command`."""

from __future__ import annotations

import typer

from pipelines import demo, lifecycle, lint, render
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


if __name__ == "__main__":  # pragma: no cover
    app()
