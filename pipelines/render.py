"""`kiosk render` (not implemented yet)."""

import typer


def command() -> None:
    """Not implemented yet."""
    typer.echo("kiosk render: not implemented", err=True)
    raise typer.Exit(3)
