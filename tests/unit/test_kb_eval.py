"""The knowledge base's evaluation figures on hand-computed examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.contracts import Passage
from training.eval_sets import BadEvalSet
from training.kb_eval import GroundedResult, answer_figures, citation_validity, load_qa, matches, retrieval_figures


def result(answerable: bool, gold_rank: int | None, reason: str = "grounded", **extra: object) -> GroundedResult:
    r = GroundedResult("q", "question?", answerable, ["g"] if answerable else [], [], gold_rank, reason=reason)
    for name, value in extra.items():
        setattr(r, name, value)
    return r


def test_recall_at_k_and_mrr() -> None:
    results = [
        result(True, 1, retrieval_ms=2.0),
        result(True, 3, retrieval_ms=4.0),
        result(True, None, retrieval_ms=6.0),
        result(True, 7, retrieval_ms=8.0),
        result(False, None, retrieval_ms=10.0),  # unanswerable: not in recall or MRR
    ]
    figures = retrieval_figures(results)
    assert figures["questions_with_gold"] == 4
    assert (figures["recall@1"], figures["recall@5"], figures["recall@10"]) == (0.25, 0.5, 0.75)
    assert figures["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 7) / 4)
    assert figures["retrieval_p50_ms"] == 6.0 and figures["retrieval_p95_ms"] == pytest.approx(9.6)


def test_abstention_over_refusal_and_f1() -> None:
    results = [
        result(True, 1, token_f1=0.5, similarity=0.8),
        result(True, 1, token_f1=0.3, similarity=0.6),
        result(True, 1, "unsupported", token_f1=0.0, similarity=0.0),  # an answerable question declined
        result(False, None, "no_evidence"),
        result(False, None, "unsupported"),
        result(False, None, "grounded"),  # an unanswerable question answered anyway
    ]
    figures = answer_figures(results)
    assert figures["token_f1"] == pytest.approx(0.8 / 3)  # abstentions count 0
    assert figures["token_f1_answered"] == pytest.approx(0.4)
    assert figures["similarity"] == pytest.approx(1.4 / 3)
    assert figures["abstention_recall"] == pytest.approx(2 / 3)
    assert figures["abstention_precision"] == pytest.approx(2 / 3)  # 3 declined, 2 of them rightly
    assert figures["over_refusal"] == pytest.approx(1 / 3)


def test_citation_validity_counts_markers_that_point_at_a_supporting_passage() -> None:
    passages = [
        Passage(1, "/kb/shipping.md", "Shipping", "We ship to Norway in 4-6 working days.", 0),
        Passage(2, "/kb/payment.md", "Payment", "We accept Visa and PayPal.", 0),
    ]
    text = "We ship to Norway in 4-6 working days [1]. We accept PayPal [1]. We accept Visa [2]. It is free [7]."
    assert citation_validity(text, passages, 0.6) == (2, 4)  # [1] on PayPal is wrong, [7] was not retrieved
    assert citation_validity("No markers here.", passages, 0.6) == (0, 0)


def test_gold_documents_match_by_file_name_or_stem() -> None:
    assert matches("/data/kb/012c571ee495.md", ("012c571ee495",))
    assert matches("/data/kb/shipping.md", ("shipping.md",))
    assert not matches("/data/kb/shipping-old.md", ("shipping",))


def test_questions_load_from_clapnq_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": "why is the sky blue", "answerable": true, "gold_passages": ["p1"],'
        ' "answers": ["Rayleigh scattering.", "Because of scattering."]}\n'
        '\n{"id": "b", "question": "who won in 1830", "answerable": false, "gold_passages": [], "answers": []}\n'
    )
    qa = load_qa(path)
    a, b = qa.cases
    assert (qa.kind, a.gold, a.answerable, a.reference) == (
        "grounded",
        ("p1",),
        True,
        "Rayleigh scattering.\nBecause of scattering.",
    )
    assert (b.answerable, b.reference) == (False, None)
    path.write_text("not json\n")
    with pytest.raises(BadEvalSet, match=r"qa\.jsonl, line 1"):
        load_qa(path)
