"""Hybrid retrieval (assistant/knowledge/retrieval.py): both fusion rules and answerability by hand, the query with
its context."""

from __future__ import annotations

import pytest

from assistant.contracts import Passage
from assistant.knowledge.retrieval import answerability, queries, rrf, weighted


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


def test_answerability_weighs_the_top_passage_and_the_best_sentence_by_hand() -> None:
    top = Passage(1, "a.md", "A", "x", 0, dense=0.6, sentences=(0.2, 0.5))
    other = Passage(2, "b.md", "B", "y", 0, dense=0.7, sentences=(0.9,))
    # the top passage's cosine (0.6), the best sentence of any passage (0.9): 0.3 * 0.6 + 0.7 * 0.9 = 0.81
    assert answerability([top, other], 0.7) == pytest.approx(0.81)
    assert answerability([top, other], 0.0) == pytest.approx(0.6)
    unindexed = Passage(3, "c.md", "C", "z", 0, dense=0.4)  # no sentence vectors: its cosine alone
    assert answerability([unindexed], 0.5) == pytest.approx(0.4) and answerability([], 0.5) == 0.0
