"""`assistant export` and `assistant review`: the training data the log holds, and labelling it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from assistant.cli.context import Context, sentences
from assistant.cli.terminal import console, err, fail
from assistant.contracts import AssistantError


def export(
    what: Annotated[str, typer.Argument(help="nlu or sft")],
    out: Annotated[Path, typer.Option(help="folder to write to")],
    auto_label_confidence: Annotated[
        float | None, typer.Option(help="NLU: add intent turns at least this confident")
    ] = None,
    scrub: Annotated[bool, typer.Option(help="SFT: mask e-mail addresses and phone numbers")] = True,
) -> None:
    """Export training data from the log: `nlu` (Rasa YAML) or `sft` (chat JSONL, train/validation)."""
    from training.export import export_nlu, export_sft

    if what not in ("nlu", "sft"):
        raise fail(f"cannot export {what!r}: choose nlu or sft")
    context = Context()
    settings = context.settings
    if what == "nlu":
        data = context.run(lambda store: export_nlu(settings, store, out, auto_label_confidence))
        console.print(f"[green]✔[/] {data.train} ({data.counts['train_examples']} examples), {data.test} (held out)")
        for conflict in data.conflicts[:10]:
            console.print(f'[yellow]conflict[/] "{conflict["text"]}": {", ".join(conflict["sources"])}')
        counts = data.counts
    else:
        sft = context.run(lambda store: export_sft(settings, store, out, scrub=scrub))
        console.print(f"[green]✔[/] {sft.train} and {sft.validation}")
        counts = sft.counts
    console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


def review(
    limit: Annotated[int, typer.Option(help="messages to go through")] = 50,
    below: Annotated[float | None, typer.Option(help="confidence under which a message is shown")] = None,
) -> None:
    """Label messages quickly: unlabelled user messages the router sent to the LLM or that had low confidence."""
    from training.review import pending, save_label

    context = Context()
    threshold = below if below is not None else context.settings.router.confidence_threshold
    items = context.run(lambda store: pending(store, threshold, limit))
    if not items:
        console.print("nothing to review: every low-confidence or LLM-routed message is labelled")
        return
    console.print(
        f"{len(items)} messages. For each: a number picks that intent from the ranking, a name sets any intent, "
        "Enter skips, q quits."
    )
    done = 0
    for item in items:
        console.rule(f"message {item.message_id} ({item.route}: {item.reason})")
        console.print(f"[bold]{item.text}[/]")
        for i, (name, confidence) in enumerate(item.ranking[:5], start=1):
            console.print(f"  {i}. {name} [dim]{confidence:.2f}[/]")
        try:
            answer = console.input("intent> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if answer == "q":
            break
        if not answer:
            continue
        intent = (
            item.ranking[int(answer) - 1][0] if answer.isdigit() and 0 < int(answer) <= len(item.ranking) else answer
        )
        try:
            context.run(lambda store, i=item, n=intent: save_label(store, i.message_id, n))
        except AssistantError as exc:  # not an intent name: ask about the next message
            err.print(f"[red]{exc}[/]")
            continue
        done += 1
        console.print(f"[green]✔[/] labelled {intent}")
    console.print(f"{done} labelled; `assistant retrain` will learn from them")


def register(app: typer.Typer) -> None:
    app.command()(sentences(export))
    app.command()(sentences(review))
