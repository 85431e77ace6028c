"""`assistant db upgrade`."""

from __future__ import annotations

import typer

from wiring.cli.context import Context, command
from wiring.cli.terminal import console

db_app = typer.Typer(help="Database schema.", no_args_is_help=True)


@command(db_app, "upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the latest version."""
    context = Context()
    context.migrate()
    console.print(f"[green]✔[/] database schema up to date ({context.settings.db_location})")


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")
