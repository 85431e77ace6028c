"""`assistant export` and `assistant review`: the training data the log holds, and labelling it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from assistant.contracts import AssistantError
from wiring.cli.context import Context, sentences, transaction
from wiring.cli.terminal import console, err, fail


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
    llm: Annotated[
        bool, typer.Option("--llm", help="review channel users' feedback on LLM replies instead of labelling")
    ] = False,
) -> None:
    """Label messages quickly: unlabelled user messages the router sent to the LLM or that had low confidence.
    With --llm: approve, edit or reject the feedback channel users gave on LLM replies (only approved
    feedback is ever fine-tuned on)."""
    from training.review import pending, save_label

    context = Context()
    if llm:
        _review_llm(context, limit)
        return
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


def _review_llm(context: Context, limit: int) -> None:
    from assistant.store import feedback

    items = transaction(context, lambda conn: feedback.pending_reviews(conn, limit))
    if not items:
        console.print("nothing to review: no channel user's feedback on an LLM reply is waiting")
        return
    console.print(
        f"{len(items)} replies with feedback. For each: a approves the suggested reply (or the reply, if rated up), "
        "e edits it, r rejects, Enter skips, q quits."
    )
    settled = 0
    for item in items:
        console.rule(f"reply {item.message_id}")
        for role, text in item.conversation:
            console.print(f"[dim]{role}:[/] {escape(text)}")
        console.print(f"[bold]bot:[/] {escape(item.reply)}")
        for given in item.feedback:
            who = f"{given['channel']}/{given['sender_id']}"
            suggestion = f" suggests: [bold]{escape(given['correction'])}[/]" if given["correction"] else ""
            console.print(f"  {who} rated {given['rating'] or '-'}{suggestion}")
        try:
            answer = console.input("a/e/r> ").strip().lower()
            correction = console.input("reply to learn> ").strip() if answer == "e" else None
        except (EOFError, KeyboardInterrupt):
            break
        if answer == "q":
            break
        decision = {"a": "approve", "e": "edit", "r": "reject"}.get(answer)
        if decision is None or (decision == "edit" and not correction):
            continue
        transaction(context, lambda conn, i=item, d=decision, c=correction: feedback.review(conn, i.message_id, d, c))
        settled += 1
        console.print(f"[green]✔[/] {decision}d" if decision != "edit" else "[green]✔[/] edited and approved")
    console.print(f"{settled} reviewed; `assistant retrain` learns only from approved feedback")


def forget(
    sender: Annotated[str, typer.Argument(help="the sender (conversation) id, as stored")],
    channel: Annotated[
        str | None, typer.Option(help="only this channel's conversation (default: every channel)")
    ] = None,
) -> None:
    """Erase one person: their conversations and everything derived (messages, feedback, labels, outbox rows,
    prompts, and the training exports and reports quoting them)."""
    from assistant.workers.erasure import forget as forget_sender

    context = Context()
    done = context.run(lambda store: forget_sender(store, context.settings, sender, channel))
    erased = done.erased
    if not erased.conversations:
        raise fail(f"no conversation of {sender!r}{f' on {channel}' if channel else ''} is stored; nothing was erased")
    console.print(
        f"[green]✔[/] erased {escape(sender)}: {erased.conversations} conversation(s), {erased.messages} messages, "
        f"{erased.feedback} feedback, {erased.labels} labels, {erased.outbox} deliveries, "
        f"{erased.annotations} annotations; {len(done.files)} file(s) scrubbed"
    )
    for path in done.files:
        console.print(f"  scrubbed {escape(str(path))}")


def register(app: typer.Typer) -> None:
    app.command()(sentences(export))
    app.command()(sentences(review))
    app.command()(sentences(forget))
