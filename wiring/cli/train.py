"""`assistant train nlu|starter`."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.store import Store
from wiring.cli.context import Context, command
from wiring.cli.terminal import console

train_app = typer.Typer(help="Train models.", no_args_is_help=True)


@command(train_app, "nlu")
def train_nlu(
    force: Annotated[bool, typer.Option(help="train even if this bot is already trained")] = True,
) -> None:
    """Train the bot's NLU model (real `rasa train nlu`) and serve it (hot-swapped if the NLU server runs)."""
    from training.publish import adopt_nlu_model, nlu_trainer

    context = Context()
    settings = context.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    trainer = nlu_trainer(settings)
    started = time.monotonic()
    with Progress(
        TextColumn(f"training the NLU model ({settings.bot_dir.name})"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.description}"), TimeElapsedColumn(), console=console, transient=True,
    ) as progress:  # fmt: skip
        task = progress.add_task("train", total=None)
        path, data_hash, config_hash = trainer.bot_model(
            force, lambda done, total, stage: progress.update(task, completed=done, total=total, description=stage)
        )
    console.print(f"[green]✔[/] trained {path.name} in {time.monotonic() - started:.0f} s")

    async def adopt(store: Store) -> str:
        try:
            return await adopt_nlu_model(settings, store, trainer, path, data_hash, config_hash)
        finally:
            await trainer.aclose()  # a stand-in started for the swap

    version = context.run(adopt)
    console.print(f"model: {path} ({version}, active)")


@command(train_app, "starter")
def train_starter() -> None:
    """Train the starter adapter on the bot's persona data (once; cached), check it with the gate and serve
    it if it passes. `assistant up` does this by itself when no LLM version is registered."""
    from training.starter import ensure_starter

    context = Context()
    settings = context.settings.model_copy(
        update={"llm": context.settings.llm.model_copy(update={"starter_adapter": True})}
    )
    said = context.run(lambda store: ensure_starter(settings, store, console))
    console.print(said or "nothing to do: the registry already has an LLM version (see `assistant models list`)")


def register(app: typer.Typer) -> None:
    app.add_typer(train_app, name="train")
