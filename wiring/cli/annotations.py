"""`assistant annotations`: written answers given before the LLM to messages close to their question. Reviewers
make them by approving or writing a reply; here they are listed, imported and exported as CSV, disabled and
removed."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from assistant.store import annotations
from wiring.cli.context import Context, command, transaction
from wiring.cli.terminal import console, fail

annotations_app = typer.Typer(help="Answers reviewers wrote, given before the LLM.", no_args_is_help=True)
COLUMNS = ("id", "question", "answer", "source", "enabled", "hits", "last_hit_at", "created_at")


@command(annotations_app, "list")
def list_annotations() -> None:
    """Every annotation with its hits (how many turns it answered)."""
    rows = transaction(Context(), annotations.listed)
    table = Table(title=f"{len(rows)} annotations")
    for column in ("id", "question", "answer", "enabled", "hits"):
        table.add_column(column)
    for row in rows:
        table.add_row(str(row.id), escape(row.question), escape(row.answer), "yes" if row.enabled else "no",
                      str(row.hits))  # fmt: skip
    console.print(table)


@command(annotations_app, "add")
def add(
    question: Annotated[str, typer.Argument(help="the message it answers (and those close to it)")],
    answer: Annotated[str, typer.Argument(help="the reply")],
) -> None:
    """Write an annotation by hand."""
    number = transaction(Context(), lambda conn: annotations.add(conn, question, answer, "import"))
    console.print(f"[green]✔[/] annotation-{number}")


@command(annotations_app, "import")
def import_csv(
    path: Annotated[Path, typer.Argument(help="a CSV file with `question` and `answer` columns (a header row)")],
) -> None:
    """Add the annotations of a CSV file (other columns, such as an export's, are ignored)."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"question", "answer"} <= set(reader.fieldnames):
                raise fail(f"{path} needs a header row with `question` and `answer` columns")
            pairs = [(row["question"] or "", row["answer"] or "") for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise fail(f"cannot read {path}: {exc}") from exc
    for line, (question, answer) in enumerate(pairs, start=2):
        if not question.strip() or not answer.strip():
            raise fail(f"{path}, line {line}: a question and an answer are needed; nothing was imported")
    added = transaction(Context(), lambda conn: [annotations.add(conn, q, a, "import") for q, a in pairs])
    console.print(f"[green]✔[/] imported {len(added)} annotations from {path}")


@command(annotations_app, "export")
def export_csv(
    out: Annotated[Path | None, typer.Option(help="the CSV file to write (default: standard output)")] = None,
) -> None:
    """Every annotation as CSV (what `import` reads back)."""
    rows = transaction(Context(), annotations.listed)
    handle = out.open("w", newline="", encoding="utf-8") if out else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        for row in rows:
            writer.writerow([row.id, row.question, row.answer, row.source, row.enabled, row.hits,
                             row.last_hit_at or "", row.created_at])  # fmt: skip
    finally:
        if out:
            handle.close()
    if out:
        console.print(f"[green]✔[/] {len(rows)} annotations in {out}")


@command(annotations_app, "disable")
def disable(number: Annotated[int, typer.Argument(help="the annotation's id")]) -> None:
    """Stop giving this answer (kept, and counted as before)."""
    transaction(Context(), lambda conn: annotations.set_enabled(conn, number, False))
    console.print(f"[green]✔[/] annotation-{number} disabled")


@command(annotations_app, "enable")
def enable(number: Annotated[int, typer.Argument(help="the annotation's id")]) -> None:
    transaction(Context(), lambda conn: annotations.set_enabled(conn, number, True))
    console.print(f"[green]✔[/] annotation-{number} enabled")


@command(annotations_app, "remove")
def remove(number: Annotated[int, typer.Argument(help="the annotation's id")]) -> None:
    transaction(Context(), lambda conn: annotations.remove(conn, number))
    console.print(f"[green]✔[/] annotation-{number} removed")


def register(app: typer.Typer) -> None:
    app.add_typer(annotations_app, name="annotations")
