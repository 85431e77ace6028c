"""`assistant kb add|list|remove|reindex|search|versions`: the knowledge base open questions are answered from."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.config import Settings
from assistant.contracts import EMBEDDERS, Embedder
from assistant.infra import entry_points
from assistant.knowledge.documents import find_files
from assistant.knowledge.indexing import Change, KnowledgeBase
from assistant.knowledge.retrieval import HybridRetriever
from assistant.store import Store, kb
from wiring.cli.context import Context, command, transaction
from wiring.cli.terminal import console, fail

kb_app = typer.Typer(help="The knowledge base: documents open questions are answered from.", no_args_is_help=True)


def embedder(settings: Settings) -> Embedder:
    return entry_points.load(EMBEDDERS, settings.kb.embedder)(settings)


def index(context: Context, work: str, paths: list[Path] | None = None, sources: list[str] | None = None) -> Change:
    """Run one change (add / remove / reindex) with progress bars."""
    settings = context.settings
    if paths is not None:
        find_files(paths)  # a missing path or an unsupported file is refused before the encoder loads
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def report(what: str, done: int, total: int) -> None:
            if what not in tasks:
                tasks[what] = progress.add_task(what, total=total)
            progress.update(tasks[what], completed=done, total=total)

        async def run(store: Store) -> Change:
            base = KnowledgeBase(settings.kb, store, embedder(settings) if work != "remove" else _NoEmbedder())
            if work == "add":
                return await base.add(paths or [], report)
            if work == "remove":
                return await base.remove(sources or [])
            return await base.reindex(report)

        return context.run(run)


class _NoEmbedder:
    """Removing documents embeds nothing: no need to load the encoder."""

    name = "unchanged"
    dimensions = 0

    def embed(self, texts: list[str]) -> list[list[float]]:
        return []


def _say(change: Change) -> None:
    colour = "green" if change.changed else "dim"
    console.print(
        f"[{colour}]✔[/] {change.summary()}" + (f" ({change.chunks} chunks embedded)" if change.chunks else "")
    )


@command(kb_app, "add")
def kb_add(
    paths: Annotated[list[Path], typer.Argument(help="files or folders (Markdown, HTML, text, PDF)")],
) -> None:
    """Index documents. Unchanged files cost nothing; a changed file replaces its chunks; adding a folder
    again drops the documents under it whose files are gone."""
    _say(index(Context(), "add", paths=paths))


@command(kb_app, "remove")
def kb_remove(sources: Annotated[list[str], typer.Argument(help="documents, as `kb list` shows them")]) -> None:
    """Drop documents: they are no longer retrieved or cited."""
    _say(index(Context(), "remove", sources=sources))


@command(kb_app, "reindex")
def kb_reindex() -> None:
    """Read and embed every document again (after changing the chunk sizes or the embedder)."""
    context = Context()
    if not transaction(context, kb.document_hashes):
        raise fail("the knowledge base is empty: add documents with `assistant kb add PATH...`")
    _say(index(context, "reindex"))


@command(kb_app, "list")
def kb_list() -> None:
    """Every document, with its chunks and when it last changed."""
    context = Context()
    documents = transaction(context, kb.list_documents)
    version = transaction(context, kb.current_version)
    if not documents:
        console.print("the knowledge base is empty: add documents with `assistant kb add PATH...`")
        return
    table = Table(title=f"knowledge base {version.version if version else ''}")
    for column in ("source", "title", "type", "chunks", "characters", "updated"):
        table.add_column(column)
    for d in documents:
        table.add_row(d.source, d.title, d.kind, str(d.chunks), str(d.chars), f"{d.updated_at:%Y-%m-%d %H:%M}")
    console.print(table)


@command(kb_app, "versions")
def kb_versions() -> None:
    """Every version of the knowledge base and what changed in it."""
    table = Table(title="knowledge base versions")
    for column in ("version", "documents", "chunks", "change", "created"):
        table.add_column(column)
    for v in transaction(Context(), kb.versions):
        change = ", ".join(f"{len(items)} {what}" for what, items in v.change.items() if items) or "-"
        table.add_row(v.version, str(v.documents), str(v.chunks), change, f"{v.created_at:%Y-%m-%d %H:%M}")
    console.print(table)


@command(kb_app, "search")
def kb_search(
    query: Annotated[str, typer.Argument(help="a question, as a user would ask it")],
    top_k: Annotated[int | None, typer.Option("--top-k", min=1, max=50, help="passages to show")] = None,
) -> None:
    """What an open question would retrieve: passages with fused, dense and keyword scores."""
    if not query.strip():
        raise fail('the query is empty: give a question, e.g. assistant kb search "do you ship to Norway?"')
    context = Context()
    settings = context.settings
    version = transaction(context, kb.current_version)
    if version is None or version.chunks == 0:
        raise fail("the knowledge base is empty: add documents with `assistant kb add PATH...`")

    async def run(store: Store) -> object:
        return await HybridRetriever(settings.kb, store, embedder(settings)).retrieve(query, top_k=top_k)

    result = context.run(run)
    floor = settings.kb.min_score
    score = f"answerability {result.answerability:.3f}"
    verdict = f"[green]{score}: answered[/]" if result.evidence else f"[yellow]{score} < {floor}: declined[/]"
    table = Table(title=f"{result.kb_version}: {verdict} ({result.latency_ms:.0f} ms)")
    for column in ("#", "fused", "dense", "best sentence", "keyword", "document", "passage"):
        table.add_column(column)
    for n, p in enumerate(result.passages, start=1):
        text = p.text if len(p.text) <= 160 else p.text[:157] + "..."
        keyword = f"{p.keyword:.2f}" if p.keyword is not None else "-"
        best = f"{p.best_sentence:.3f}" if p.best_sentence is not None else "-"
        table.add_row(str(n), f"{p.score:.4f}", f"{p.dense or 0:.3f}", best, keyword, f"{p.title}\n{p.source}", text)
    console.print(table)


def register(app: typer.Typer) -> None:
    app.add_typer(kb_app, name="kb")
