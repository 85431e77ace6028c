"""Grounded answers (assistant/knowledge/grounding.py): support, attribution, checks, quoting, on hand-computed
examples."""

from __future__ import annotations

import pytest

from assistant.config import KBSettings
from assistant.contracts import Passage
from assistant.knowledge.grounding import check, cited, content_words, decide, extract, judge, support


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
