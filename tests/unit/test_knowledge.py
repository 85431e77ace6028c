"""The knowledge base's parts on hand-made examples: reading and chunking documents, the fusion rules, the
support check, and keeping the index in step with the files (on SQLite, and on PostgreSQL with pgvector when
ASSISTANT_TEST_POSTGRES_URL is set)."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from assistant.config import KBSettings
from assistant.contracts import Passage
from assistant.knowledge.base import KnowledgeBase
from assistant.knowledge.documents import DocumentError, find_files, read, split
from assistant.knowledge.grounding import check, cited, content_words, decide, extract, judge, support
from assistant.knowledge.retrieval import HybridRetriever, LangChainRetriever, answerability, queries, rrf, weighted
from assistant.store import Store, kb
from tests.unit.fakes import FakeEmbedder


def minimal_pdf(text: str) -> bytes:
    """A one-page PDF whose content stream shows ``text`` (enough for pypdf to extract it)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


# ---------------------------------------------------------------- reading and chunking


def test_each_type_is_read_with_its_title(tmp_path: Path) -> None:
    (tmp_path / "shipping.md").write_text("# Shipping and delivery\n\nWe ship to Norway.\n")
    (tmp_path / "stores.html").write_text(
        "<html><head><title>Our stores</title><script>var x = 1;</script></head>"
        "<body><nav>Home | Shop</nav><h1>Stores</h1><p>Berlin is open until 20:00.</p></body></html>"
    )
    (tmp_path / "notes_on-gifts.txt").write_text("Gift cards are valid for 3 years.")
    (tmp_path / "manual.pdf").write_bytes(minimal_pdf("The kettle holds 1.7 litres."))
    docs = {Path(d.source).name: d for d in map(read, find_files([tmp_path]))}
    assert docs["shipping.md"].title == "Shipping and delivery" and docs["shipping.md"].kind == "markdown"
    html = docs["stores.html"]
    assert (html.title, html.kind) == ("Our stores", "html")
    assert "Berlin is open until 20:00." in html.text and "Home | Shop" not in html.text and "var x" not in html.text
    assert docs["notes_on-gifts.txt"].title == "Notes on gifts"
    assert docs["manual.pdf"].kind == "pdf" and "The kettle holds 1.7 litres." in docs["manual.pdf"].text


def test_bad_paths_are_refused_with_a_sentence(tmp_path: Path) -> None:
    with pytest.raises(DocumentError, match=r"missing\.md does not exist"):
        find_files([tmp_path / "missing.md"])
    (tmp_path / "sheet.xlsx").write_bytes(b"PK")
    with pytest.raises(DocumentError, match=r"sheet\.xlsx: unsupported type \.xlsx; the knowledge base reads"):
        find_files([tmp_path / "sheet.xlsx"])
    (tmp_path / "empty.md").write_text("   \n")
    with pytest.raises(DocumentError, match=r"empty\.md has no text"):
        read(tmp_path / "empty.md")
    (tmp_path / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(DocumentError, match=r"latin1\.txt is not UTF-8 text"):
        read(tmp_path / "latin1.txt")
    (tmp_path / "broken.pdf").write_bytes(b"not a pdf")
    with pytest.raises(DocumentError, match=r"broken\.pdf could not be read as PDF"):
        read(tmp_path / "broken.pdf")


def test_folders_are_read_recursively_without_hidden_or_unsupported_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "deep.md").write_text("# Deep\ntext")
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "notes.md").write_text("# Hidden\ntext")
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    assert [p.name for p in find_files([tmp_path])] == ["deep.md"]


def test_chunks_respect_the_size_and_keep_the_title(tmp_path: Path) -> None:
    paragraphs = [f"Paragraph {i} " + "word " * 30 for i in range(6)]  # about 190 characters each
    (tmp_path / "long.md").write_text("# Long page\n\n" + "\n\n".join(paragraphs))
    chunks = split(read(tmp_path / "long.md"), chunk_chars=400, overlap=0)
    assert 3 <= len(chunks) <= 6 and all(len(c.text) <= 400 for c in chunks)
    assert all(c.title == "Long page" for c in chunks)
    assert chunks[0].for_embedding.startswith("Long page: ")
    joined = " ".join(c.text for c in chunks)
    assert all(p.strip() in joined for p in paragraphs)  # nothing lost at the boundaries
    assert len(split(read(tmp_path / "long.md"), chunk_chars=5000, overlap=0)) == 1


# ---------------------------------------------------------------- fusion


def test_reciprocal_rank_fusion_by_hand() -> None:
    keyword = [(1, 9.0), (2, 5.0)]
    dense = [(2, 0.8), (3, 0.7)]
    fused = rrf([keyword, dense], k=60)
    assert fused[1] == pytest.approx(1 / 61)
    assert fused[2] == pytest.approx(1 / 62 + 1 / 61)  # second in one list, first in the other: best
    assert fused[3] == pytest.approx(1 / 62)
    assert max(fused, key=fused.__getitem__) == 2


def test_weighted_fusion_by_hand() -> None:
    keyword = [(1, 10.0), (2, 5.0)]  # normalised: 1.0, 0.5
    dense = [(2, 0.9), (3, 0.4)]
    fused = weighted([keyword], [dense], dense_weight=0.25)
    assert fused[1] == pytest.approx(0.75 * 1.0)
    assert fused[2] == pytest.approx(0.25 * 0.9 + 0.75 * 0.5)
    assert fused[3] == pytest.approx(0.25 * 0.4)
    # two keyword lists (message, message + context) are averaged
    both = weighted([keyword, [(3, 2.0)]], [dense], dense_weight=0.0)
    assert both[3] == pytest.approx(0.5) and both[1] == pytest.approx(0.5)


def test_the_query_adds_the_earlier_user_messages() -> None:
    assert queries("and to Sweden?", [], 1) == ["and to Sweden?"]
    assert queries("and to Sweden?", ["hi", "do you ship to Norway?"], 1) == [
        "and to Sweden?",
        "do you ship to Norway? and to Sweden?",
    ]
    assert queries("x", ["a", "b"], 0) == ["x"]


# ---------------------------------------------------------------- support and citations


def passage(n: int, text: str, title: str = "Doc") -> Passage:
    return Passage(chunk_id=100 + n, source=f"/kb/doc{n}.md", title=title, text=text, position=0)


def test_support_is_the_share_of_content_words_in_the_passage() -> None:
    text = "Kettles carry a warranty of 5 years in total."
    assert content_words("The kettles [2] have a 5-year warranty.") == ["kettl", "5", "year", "warranti"]
    assert support("Kettles have a 5 year warranty.", text) == 1.0  # kettle, 5, year, warranty all there
    assert support("Toasters have a 5 year warranty.", text) == pytest.approx(3 / 4)  # toaster is not
    assert support("Sorry, I don't know.", text) == 0.0  # no content words: supports nothing


def test_a_sentence_is_attributed_to_the_passage_that_supports_it() -> None:
    passages = [passage(1, "We ship to Norway in 4-6 working days."), passage(2, "Kettles have a 5 year warranty.")]
    right = judge("Kettles have a 5 year warranty [2].", passages, 0.6)
    assert (right.passage, right.kept, right.support) == (2, True, 1.0)
    wrong_cite = judge("Kettles have a 5 year warranty [1].", passages, 0.6)
    assert (wrong_cite.passage, wrong_cite.kept) == (2, True)  # re-attributed to the passage that says it
    invented = judge("Kettles come with a free descaler and a mug.", passages, 0.6)
    assert not invented.kept
    assert cited("Kettles have a warranty [1].", 2) == "Kettles have a warranty [2]."
    assert cited("Is that so?", 1) == "Is that so [1]?"


def test_check_keeps_supported_sentences_and_cites_each_once() -> None:
    passages = [
        passage(1, "We ship to Norway in 4-6 working days.", "Shipping"),
        passage(2, "Gift cards last 3 years."),
    ]
    answer = "We ship to Norway in 4-6 working days [1]. Shipping there is free on Sundays. It takes 4-6 days."
    result = check(answer, passages, 0.6)
    assert result.text == "We ship to Norway in 4-6 working days [1]. It takes 4-6 days [1]."
    assert [(c.n, c.chunk_id, c.title, c.source) for c in result.citations] == [(1, 101, "Shipping", "/kb/doc1.md")]
    assert [j.kept for j in result.judged] == [True, False, True]
    assert result.words == len(content_words("We ship to Norway in 4-6 working days")) + len(
        content_words("It takes 4-6 days")
    )
    assert check("I don't know.", passages, 0.6).words == 0


def test_answerability_weighs_the_top_passage_and_the_best_sentence_by_hand() -> None:
    top = Passage(1, "a.md", "A", "x", 0, dense=0.6, sentences=(0.2, 0.5))
    other = Passage(2, "b.md", "B", "y", 0, dense=0.7, sentences=(0.9,))
    # the top passage's cosine (0.6), the best sentence of any passage (0.9): 0.3 * 0.6 + 0.7 * 0.9 = 0.81
    assert answerability([top, other], 0.7) == pytest.approx(0.81)
    assert answerability([top, other], 0.0) == pytest.approx(0.6)
    unindexed = Passage(3, "c.md", "C", "z", 0, dense=0.4)  # no sentence vectors: its cosine alone
    assert answerability([unindexed], 0.5) == pytest.approx(0.4) and answerability([], 0.5) == 0.0


def test_extract_quotes_the_best_sentences_in_their_order_and_cites_the_passage() -> None:
    text = "Kettles carry a five year warranty. Toasters carry two. Claims need the receipt. We sell mugs."
    top = Passage(7, "/kb/warranty.md", "Warranty", text, 0, dense=0.5, sentences=(0.8, 0.1, 0.6, 0.2))
    quoted = extract("kettle warranty", [top, passage(2, "other")], 2)
    assert quoted.text == "Kettles carry a five year warranty. Claims need the receipt [1]."
    assert [(c.n, c.chunk_id, c.title) for c in quoted.citations] == [(1, 7, "Warranty")]
    assert quoted.words == len(content_words("Kettles carry a five year warranty. Claims need the receipt."))
    # without sentence vectors (indexed before them), the question's words rank the sentences
    plain = Passage(7, "/kb/warranty.md", "Warranty", text, 0)
    assert extract("which mugs do you sell", [plain], 1).text == "We sell mugs [1]."
    assert extract("anything", [], 2).text == ""


def test_hybrid_quotes_where_generate_abstains() -> None:
    passages = [Passage(1, "w.md", "Warranty", "Kettles carry a five year warranty.", 0, sentences=(0.9,))]
    unsupported = "Delivery by drone is free on Sundays."
    reply, reason, _ = decide(unsupported, passages, KBSettings(answer="generate"), "kettle warranty")
    assert (reply, reason) == (KBSettings().abstain_reply, "unsupported")
    reply, reason, checked = decide(unsupported, passages, KBSettings(answer="hybrid"), "kettle warranty")
    assert (reply, reason) == ("Kettles carry a five year warranty [1].", "quoted") and checked.citations
    supported = "Kettles carry a five year warranty."
    assert decide(supported, passages, KBSettings(answer="hybrid"))[1] == "grounded"


# ---------------------------------------------------------------- the index kept in step with the files


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
