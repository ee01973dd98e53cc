"""`kiosk demo` (not implemented yet)."""

import typer


def command() -> None:
    """Not implemented yet."""
    typer.echo("kiosk demo: not implemented", err=True)
    raise typer.Exit(3)
