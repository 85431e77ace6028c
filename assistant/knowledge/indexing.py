"""Keeping the knowledge base in step with the documents (`assistant kb add/remove/reindex`, `assistant up`).

A document is known by its resolved path. Adding an unchanged file does nothing; a changed one replaces its
chunks; adding a folder again also drops the documents under it whose files are gone (they stop being cited).
Every change is recorded as a new knowledge-base version (``kb-0004``), which turns and reports name.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Connection

from assistant.config import KBSettings
from assistant.contracts import Embedder
from assistant.knowledge.documents import Chunk, Document, find_files, read, split
from assistant.knowledge.grounding import chunk_sentences
from assistant.store import Store, kb

Progress = Callable[[str, int, int], None]  # (what, done, total)


@dataclass
class Change:
    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    chunks: int = 0  # chunks embedded
    version: str | None = None  # the new version, when anything changed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.replaced or self.removed)

    def summary(self) -> str:
        parts = [f"{len(v)} {k}" for k, v in
                 (("added", self.added), ("replaced", self.replaced), ("removed", self.removed),
                  ("unchanged", self.unchanged)) if v]  # fmt: skip
        tail = f"; knowledge base is now {self.version}" if self.version else "; nothing changed"
        return (", ".join(parts) or "no documents") + tail


class KnowledgeBase:
    def __init__(self, settings: KBSettings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder

    async def add(self, paths: Iterable[Path], progress: Progress | None = None) -> Change:
        """Index these files and folders (see the module docstring)."""
        known = await self.store.transaction(kb.document_hashes)
        change, documents = await asyncio.to_thread(_plan_add, list(paths), known, progress)
        await self._write(documents, change, progress)
        await self.fill_sentences(progress)
        return change

    async def fill_sentences(self, progress: Progress | None = None) -> int:
        """Embed the sentences of chunks indexed before there were sentence vectors (migration 0007); the
        chunks and the version stay as they are. Returns how many chunks were filled."""
        missing = await self.store.transaction(lambda conn: kb.all_chunks(conn, without_sentences=True))
        if not missing:
            return 0
        texts = [text for _, _, text in missing]
        embedded = await asyncio.to_thread(self._sentence_vectors, texts, progress)
        filled = {chunk_id: blob for (chunk_id, _, _), blob in zip(missing, embedded, strict=True)}
        await self.store.transaction(lambda conn: kb.set_embeddings(conn, {}, filled))
        return len(filled)

    async def remove(self, sources: Iterable[str]) -> Change:
        """Drop documents by source (as `kb list` shows it, or a path that resolves to it)."""
        known = await self.store.transaction(kb.document_hashes)
        change = Change()
        for source in sources:
            name = source if source in known else _absolute(source)
            if name not in known:
                raise kb.UnknownDocument(f"the knowledge base has no document {source!r} (see `assistant kb list`)")
            change.removed.append(name)
        await self._write([], change, None)
        return change

    async def reindex(self, progress: Progress | None = None) -> Change:
        """Read every document again and embed every chunk again (after changing the embedder or the chunk
        sizes); documents whose files are gone are dropped."""
        known = await self.store.transaction(kb.document_hashes)
        change, documents = await asyncio.to_thread(_plan_reindex, known)
        await self._write(documents, change, progress)
        return change

    async def _write(self, documents: list[Document], change: Change, progress: Progress | None) -> None:
        chunked = [(d, split(d, self.settings.chunk_chars, self.settings.chunk_overlap)) for d in documents]
        # embedding is CPU work: off the event loop (onnxruntime releases the GIL)
        embedded = await asyncio.to_thread(self._embed, [chunks for _, chunks in chunked], progress)
        change.chunks = sum(len(chunks) for _, chunks in chunked)
        if not change.changed:
            return

        def work(conn: Connection) -> str:
            for source in change.removed:
                kb.remove_document(conn, source)
            for (document, _), chunks in zip(chunked, embedded, strict=True):
                kb.put_document(
                    conn, document.source, document.title, document.kind, document.content_hash,
                    len(document.text), chunks,
                )  # fmt: skip
            what = {"added": change.added, "replaced": change.replaced, "removed": change.removed}
            return kb.record_version(conn, self.embedder.name, what).version

        change.version = await self.store.transaction(work)

    def _embed(self, documents: list[list[Chunk]], progress: Progress | None) -> list[list[kb.NewChunk]]:
        total, done = sum(len(chunks) for chunks in documents), 0
        embedded: list[list[kb.NewChunk]] = []
        for chunks in documents:
            vectors = self.embedder.embed([c.for_embedding for c in chunks]) if chunks else []
            per_sentence = self._sentence_vectors([c.text for c in chunks])
            embedded.append(
                [
                    kb.NewChunk(c.title, c.text, c.content_hash, vector, blob)
                    for c, vector, blob in zip(chunks, vectors, per_sentence, strict=True)
                ]
            )
            done += len(chunks)
            if progress:
                progress("embedding", done, total)
        return embedded

    def _sentence_vectors(self, texts: list[str], progress: Progress | None = None) -> list[bytes]:
        """Each text's sentences (``grounding.chunk_sentences``) embedded, as stored (one batch for all)."""
        split_texts = [chunk_sentences(t) for t in texts]
        flat = [s for parts in split_texts for s in parts]
        matrix = self.embedder.embed(flat) if flat else []
        blobs, start = [], 0
        for parts in split_texts:
            blobs.append(kb.matrix_bytes(matrix[start : start + len(parts)]))
            start += len(parts)
        if progress:
            progress("sentences", len(texts), len(texts))
        return blobs


def _plan_add(paths: list[Path], known: dict[str, str], progress: Progress | None) -> tuple[Change, list[Document]]:
    """Which files are new, changed, unchanged, and which documents under the folders are gone."""
    files = find_files(paths)  # raises a sentence for a missing path or an unsupported file
    folders = [str(p.resolve()) for p in paths if p.is_dir()]
    change, documents = Change(), []
    for i, path in enumerate(files):
        document = read(path)
        if progress:
            progress("reading", i + 1, len(files))
        if known.get(document.source) == document.content_hash:
            change.unchanged.append(document.source)
        else:
            (change.replaced if document.source in known else change.added).append(document.source)
            documents.append(document)
    present = {str(p) for p in files}
    change.removed = [s for s in known if any(_under(s, f) for f in folders) and s not in present]
    return change, documents


def _plan_reindex(known: dict[str, str]) -> tuple[Change, list[Document]]:
    change, documents = Change(), []
    for source in known:
        if Path(source).is_file():
            documents.append(read(Path(source)))
            change.replaced.append(source)
        else:
            change.removed.append(source)
    return change, documents


def _absolute(path: str) -> str:
    return os.path.abspath(path)


def _under(source: str, folder: str) -> bool:
    return source.startswith(folder.rstrip("/") + "/")
