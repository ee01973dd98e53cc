"""`kiosk images build`: the steps image and the images the local cluster's node runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipelines.images import build as builder
from pipelines.images._buildah import ImagesError
from pipelines.images.catalog import ImageSpec

app = typer.Typer(help="Images built here from the project's Dockerfiles and Debian's packages.", no_args_is_help=True)
OnlyOption = typer.Option([], "--only", help="Build only these images (and the bases they need); repeatable.")
OutputOption = typer.Option(None, "--output", help="Directory for the archives and index.json (default .tools/images).")


@app.command("build")
def build(only: list[str] = OnlyOption, output: Path | None = OutputOption) -> None:
    """Build every image into buildah's store and .tools/images/<name>.tar (+ index.json); current ones are kept."""
    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("images", total=None)

        def started(spec: ImageSpec, rebuild: bool) -> None:
            progress.update(task, description=f"{'building' if rebuild else 'current'} {spec.reference}")

        try:
            results = builder.build_all(only=set(only) or None, output=output, on_start=started)
        except ImagesError as error:
            progress.stop()
            typer.echo(f"kiosk images build: {error}", err=True)
            raise typer.Exit(2) from None
    table = Table("image", "reference", "size", "seconds", "built")
    for result in results:
        mib = f"{result.size / 2**20:.1f} MiB"
        table.add_row(
            result.spec.name,
            result.spec.reference,
            mib,
            f"{result.seconds:.1f}",
            "yes" if result.rebuilt else "current",
        )
    Console().print(table)
