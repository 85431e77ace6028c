"""Indexing (assistant/knowledge/indexing.py): adding, changing and removing documents and searching them, on SQLite
and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.config import KBSettings
from assistant.knowledge.indexing import KnowledgeBase
from assistant.knowledge.retrieval import HybridRetriever, LangChainRetriever
from assistant.store import Store, kb
from tests.unit.fakes import FakeEmbedder


@pytest.mark.database
async def test_add_change_remove_and_search(store_url: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "shipping.md").write_text("# Shipping\n\nWe ship kettles to Norway in six working days.")
    (docs / "warranty.md").write_text("# Warranty\n\nKettles carry a five year warranty.")
    (docs / "stores.md").write_text("# Stores\n\nThe Berlin store opens at ten.")
    store = Store(store_url)
    settings = KBSettings(min_score=0.2, top_k=2)
    embedder = FakeEmbedder()
    base = KnowledgeBase(settings, store, embedder)
    try:
        first = await base.add([docs])
        assert (len(first.added), first.version, first.chunks) == (3, "kb-0001", 3)
        again = await base.add([docs])
        assert (again.changed, len(again.unchanged), again.version, again.chunks) == (False, 3, None, 0)

        retriever = HybridRetriever(settings, store, embedder)
        found = await retriever.retrieve("do you ship kettles to norway")
        assert found.evidence and found.kb_version == "kb-0001"
        assert found.passages[0].title == "Shipping" and found.passages[0].keyword is not None
        first_shipping = found.passages[0]
        assert found.passages[0].dense == pytest.approx(max(p.dense or 0 for p in found.passages))

        (docs / "shipping.md").write_text("# Shipping\n\nWe ship kettles to Sweden only.")
        (docs / "stores.md").unlink()
        edited = await base.add([docs])
        assert [Path(s).name for s in edited.replaced] == ["shipping.md"]
        assert [Path(s).name for s in edited.removed] == ["stores.md"] and edited.version == "kb-0002"
        found = await retriever.retrieve("do you ship kettles to norway")
        assert first_shipping.chunk_id not in {p.chunk_id for p in found.passages}  # ids are never reused
        texts = [p.text for p in found.passages]
        assert "We ship kettles to Sweden only." in texts and not any("Norway" in t for t in texts)
        opening = await retriever.retrieve("when does the berlin store open")
        assert all(p.title != "Stores" for p in opening.passages) and found.kb_version == "kb-0002"

        listed = await store.transaction(kb.list_documents)
        assert [(Path(d.source).name, d.chunks) for d in listed] == [("shipping.md", 1), ("warranty.md", 1)]
        await base.remove([str(docs / "warranty.md")])
        with pytest.raises(kb.UnknownDocument, match=r"no document 'nowhere\.md'"):
            await base.remove(["nowhere.md"])
        versions = await store.transaction(kb.versions)
        assert [(v.version, v.documents, v.chunks) for v in versions] == [
            ("kb-0001", 3, 3), ("kb-0002", 2, 2), ("kb-0003", 1, 1),
        ]  # fmt: skip

        docs_langchain = await LangChainRetriever(retriever=retriever, top_k=1).ainvoke("ship kettles to sweden")
        assert docs_langchain[0].page_content == "We ship kettles to Sweden only."
        assert (
            docs_langchain[0].metadata["title"] == "Shipping" and docs_langchain[0].metadata["kb_version"] == "kb-0003"
        )
    finally:
        await store.aclose()


@pytest.mark.database
async def test_an_empty_knowledge_base_embeds_nothing(store_url: str) -> None:
    store = Store(store_url)
    embedder = FakeEmbedder()
    try:
        found = await HybridRetriever(KBSettings(), store, embedder).retrieve("anything")
        assert (found.passages, found.evidence, found.kb_version, embedder.calls) == ([], False, None, 0)
    finally:
        await store.aclose()


@pytest.mark.database
async def test_a_chunk_id_is_never_reused(store_url: str, tmp_path: Path) -> None:
    """Old turns cite chunk ids: a replaced document's new chunks must not take the ids of the old ones."""
    (tmp_path / "only.md").write_text("# Only\n\nThe first text.")
    store = Store(store_url)
    try:
        base = KnowledgeBase(KBSettings(), store, FakeEmbedder())
        await base.add([tmp_path])
        before = set(await store.transaction(lambda conn: kb.passages(conn, [1, 2, 3])))
        (tmp_path / "only.md").write_text("# Only\n\nThe second text.")
        await base.add([tmp_path])
        after = {chunk_id for chunk_id, _, _ in await store.transaction(kb.all_chunks)}
        assert before and after and not before & after
    finally:
        await store.aclose()


@pytest.mark.database
async def test_each_sentence_is_embedded_and_old_chunks_get_theirs_on_the_next_add(
    store_url: str, tmp_path: Path
) -> None:
    """Sentence vectors are stored with each chunk (one row per sentence); chunks indexed before there were
    any (migration 0007) get them at the next ``add`` without a new version, and retrieval scores them."""
    (tmp_path / "ship.md").write_text("# Shipping\n\nWe ship kettles to Norway. Sweden takes four days.")
    store = Store(store_url)
    embedder = FakeEmbedder()
    try:
        base = KnowledgeBase(KBSettings(), store, embedder)
        await base.add([tmp_path])
        rows = await store.transaction(lambda conn: conn.execute(select(kb.chunks_t.c.sentence_embeddings)).all())
        (blob,) = [row[0] for row in rows]
        matrix = kb.matrix_of(blob, embedder.dimensions)
        assert matrix is not None and matrix.shape == (2, embedder.dimensions)
        expected = embedder.embed(["We ship kettles to Norway.", "Sweden takes four days."])
        assert matrix == pytest.approx(expected)

        await store.transaction(lambda conn: conn.execute(kb.chunks_t.update().values(sentence_embeddings=None)))
        assert len(await store.transaction(lambda conn: kb.all_chunks(conn, without_sentences=True))) == 1
        again = await base.add([tmp_path])
        assert again.version is None  # nothing changed in the documents: no new version
        assert await store.transaction(lambda conn: kb.all_chunks(conn, without_sentences=True)) == []
        found = await HybridRetriever(KBSettings(), store, embedder).retrieve("sweden four days")
        (top,) = found.passages[:1]
        assert len(top.sentences) == 2 and top.sentences[1] > top.sentences[0] and top.best_sentence == top.sentences[1]
    finally:
        await store.aclose()
