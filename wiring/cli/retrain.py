"""`assistant retrain`: learn from the log, promote only what is better."""

from __future__ import annotations

import asyncio
import signal
from types import FrameType
from typing import Annotated

import psutil
import typer

from wiring.cli.context import Context, sentences
from wiring.cli.terminal import console, fail


def _stop_children(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM: stop the training processes we started, then unwind (the run is marked failed)."""
    for child in psutil.Process().children(recursive=True):
        child.kill()
    raise KeyboardInterrupt


def retrain(
    nlu_only: Annotated[bool, typer.Option("--nlu-only", help="retrain only the NLU model")] = False,
    llm_only: Annotated[bool, typer.Option("--llm-only", help="retrain only the LoRA adapter")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="export and say what would be trained; change nothing")
    ] = False,
    min_new: Annotated[int, typer.Option(help="do nothing unless this many new labels/feedback items exist")] = 0,
    epochs: Annotated[
        int | None, typer.Option(help="DIET epochs for a full NLU train (default: the bot's config)")
    ] = None,
    llm_epochs: Annotated[int | None, typer.Option(help="LoRA epochs (default: settings.training.llm_epochs)")] = None,
    auto_label_confidence: Annotated[
        float | None, typer.Option(help="also train the NLU on intent turns at least this confident")
    ] = None,
    scrub: Annotated[bool, typer.Option(help="mask e-mail addresses and phone numbers in SFT data")] = True,
) -> None:
    """Retrain from the log: export, train both models, evaluate, promote only what is better, hot-swap it."""
    from training.retrain import Retrain, RetrainOptions

    if nlu_only and llm_only:
        raise fail("--nlu-only and --llm-only exclude each other; leave both out to retrain both")
    options = RetrainOptions(
        nlu=not llm_only,
        llm=not nlu_only,
        dry_run=dry_run,
        min_new=min_new,
        nlu_epochs=epochs,
        llm_epochs=llm_epochs,
        auto_label_confidence=auto_label_confidence,
        scrub=scrub,
    )
    context = Context()
    context.migrate()
    signal.signal(signal.SIGTERM, _stop_children)
    try:
        result = asyncio.run(Retrain(context.settings, options, console).run())
    except KeyboardInterrupt as exc:
        raise fail("interrupted: the models being trained are marked failed; the active ones still serve", 130) from exc
    for outcome in result.outcomes:
        colour = {"promoted": "green", "rejected": "yellow"}.get(outcome.status, "cyan")
        version = f" {outcome.version}" if outcome.version else ""
        console.print(f"[{colour}]{outcome.kind.upper()}: {outcome.status}{version}[/] - {outcome.reason}")
    if result.report:
        console.print(f"report: {result.report}")


def register(app: typer.Typer) -> None:
    app.command()(sentences(retrain))
