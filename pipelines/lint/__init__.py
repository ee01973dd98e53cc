"""`kiosk lint` (not implemented yet)."""

import typer


def command() -> None:
    """Not implemented yet."""
    typer.echo("kiosk lint: not implemented", err=True)
    raise typer.Exit(3)
