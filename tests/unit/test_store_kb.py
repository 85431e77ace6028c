"""The knowledge base's tables and searches (assistant/store/kb.py), on SQLite (FTS5, a numpy scan) and on
PostgreSQL (full text, pgvector) when configured: a document's chunks replaced or removed, keyword and dense
search ranked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from assistant.store import Store, kb
from assistant.store.tables import EMBEDDING_DIMENSIONS

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


def axis(i: int) -> np.ndarray:
    vector = np.zeros(EMBEDDING_DIMENSIONS, dtype=np.float32)
    vector[i] = 1.0
    return vector


def chunk(text: str, i: int) -> kb.NewChunk:
    return kb.NewChunk("Doc", text, f"h{i}", axis(i))


def test_the_query_terms_drop_stop_words_and_repeats() -> None:
    assert kb.terms("What is THE warranty on the kettle, the kettle?") == ["warranty", "kettle"]
    assert kb.terms("the a of") == []


def test_sentence_vectors_are_stored_as_float32_rows() -> None:
    matrix = np.arange(6, dtype=np.float64).reshape(2, 3)
    assert kb.matrix_of(kb.matrix_bytes(matrix), 3).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert kb.matrix_of(None, 3) is None


async def test_documents_are_replaced_removed_and_searched(store_url: str) -> None:
    store = Store(store_url)
    index = kb.DenseIndex()
    try:
        await store.transaction(
            lambda c: kb.put_document(c, "/docs/a.md", "A", "md", "ha", 40, [chunk("kettles boil water", 0),
                                                                           chunk("warranty lasts two years", 1)])
        )  # fmt: skip
        await store.transaction(lambda c: kb.put_document(c, "/docs/b.md", "B", "md", "hb", 20, [chunk("tea", 2)]))
        found = await store.transaction(lambda c: kb.keyword_search(c, "how long is the warranty", 5))
        ids = await store.transaction(lambda c: kb.passages(c, [chunk_id for chunk_id, _ in found]))
        assert [ids[chunk_id].text for chunk_id, _ in found] == ["warranty lasts two years"]
        dense = await store.transaction(lambda c: index.search(c, "v1", axis(2) * 0.6 + axis(0) * 0.8, 3))
        texts = await store.transaction(lambda c: kb.passages(c, [chunk_id for chunk_id, _ in dense]))
        assert [texts[i].text for i, _ in dense][:2] == ["kettles boil water", "tea"]
        assert [round(score, 3) for _, score in dense][:2] == [0.8, 0.6]

        await store.transaction(lambda c: kb.put_document(c, "/docs/a.md", "A", "md", "ha2", 9, [chunk("kettle", 3)]))
        listed = {d.source: d.chunks for d in await store.transaction(kb.list_documents)}
        assert listed == {"/docs/a.md": 1, "/docs/b.md": 1}
        assert await store.transaction(lambda c: kb.keyword_search(c, "warranty", 5)) == []
        await store.transaction(lambda c: kb.remove_document(c, "/docs/b.md"))
        assert await store.transaction(kb.document_hashes) == {"/docs/a.md": "ha2"}
        with pytest.raises(kb.UnknownDocument, match=r"no document '/docs/b\.md'"):
            await store.transaction(lambda c: kb.remove_document(c, "/docs/b.md"))
        dense = await store.transaction(lambda c: index.search(c, "v2", axis(3), 3))
        assert len(dense) == 1 and round(dense[0][1], 3) == 1.0
    finally:
        await store.aclose()
