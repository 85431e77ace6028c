"""`assistant init --from-rasa PATH`: an existing Rasa project as a bot directory this assistant runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from wiring.cli.context import sentences
from wiring.cli.terminal import console, fail


def init(
    from_rasa: Annotated[Path, typer.Option("--from-rasa", help="the Rasa 3 project folder (config.yml, data/, ...)")],
    out: Annotated[Path, typer.Option(help="the bot directory to write (must be new or empty)")] = Path("bot"),
) -> None:
    """Turn a Rasa project into a bot directory (then: assistant up --bot DIR); says what does not carry over."""
    from wiring.rasa_project import import_project

    if not from_rasa.is_dir():
        raise fail(f"{from_rasa} is not a folder: give the Rasa project's folder (the one with config.yml)")
    done = import_project(from_rasa, out)
    console.print(f"[green]✔[/] {escape(str(done.bot_dir))} made from {escape(str(from_rasa))}")
    console.print("  taken: " + escape(", ".join(done.copied)))
    for intent, response in done.mapped.items():
        console.print(f"  intent {escape(intent)} answers with {escape(response)} (as its rules and stories did)")
    for note in done.notes:
        console.print(f"  [yellow]note:[/] {escape(note)}")
    console.print(f"Run it: assistant up --bot {escape(str(done.bot_dir))}")


def register(app: typer.Typer) -> None:
    app.command()(sentences(init))
