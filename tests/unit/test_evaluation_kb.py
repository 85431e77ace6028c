"""The knowledge base's evaluation figures on hand-computed examples."""

from __future__ import annotations

import pytest

from assistant.config import KBSettings
from assistant.contracts import Passage
from assistant.knowledge.retrieval import answerability
from evaluation.kb import (
    GroundedResult,
    RawAnswer,
    answer_figures,
    calibrate,
    citation_validity,
    judge_raw,
    matches,
    retrieval_figures,
)
from evaluation.sets import Case


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


def raw(case_id: str, answerable: bool, dense: float, sentences: tuple[float, ...], text: str = "") -> RawAnswer:
    passage = Passage(1, "/kb/w.md", "Warranty", "Kettles carry a five year warranty. Mugs are not covered.", 0,
                      dense=dense, sentences=sentences)  # fmt: skip
    reference = "Kettles carry a five year warranty." if answerable else None
    return RawAnswer(Case(case_id, "kettle warranty", reference=reference, answerable=answerable), [passage], text)


def test_judge_raw_applies_the_floor_and_the_answer_mode_by_hand() -> None:
    rows = [raw("a", True, 0.6, (0.9, 0.1), "Kettles carry a five year warranty."), raw("u", False, 0.5, (0.2, 0.3))]
    kb = KBSettings(answer="extract", sentence_weight=0.5, min_score=0.6, max_sentences=1)
    answered, declined = judge_raw(rows, kb)
    # a: 0.5 * 0.6 + 0.5 * 0.9 = 0.75 >= 0.6, quoted; u: 0.5 * 0.5 + 0.5 * 0.3 = 0.4 < 0.6, declined
    assert (answered.reason, answered.reply, answered.token_f1) == (
        "quoted", "Kettles carry a five year warranty [1].", 1.0
    )  # fmt: skip
    assert (declined.reason, declined.reply, declined.evidence) == ("no_evidence", kb.abstain_reply, False)
    generated = judge_raw(rows, kb.model_copy(update={"answer": "generate"}))[0]
    assert (generated.reason, generated.raw) == ("grounded", "") and generated.citations[0]["n"] == 1


def test_calibration_chooses_the_floor_that_declines_the_unanswerable_questions() -> None:
    rows = [raw(f"a{i}", True, 0.7, (0.8,)) for i in range(8)] + [raw(f"u{i}", False, 0.3, (0.35,)) for i in range(8)]
    chosen, figures = calibrate(rows, KBSettings(), ("extract",))
    assert chosen.answer == "extract" and figures["abstention_recall"] == 1.0 and figures["over_refusal"] == 0.0
    # every question's score is between 0.3 and 0.8: the floor separates them whatever the weight
    assert all(answerability(r.passages, chosen.sentence_weight) >= chosen.min_score for r in rows[:8])
    assert all(answerability(r.passages, chosen.sentence_weight) < chosen.min_score for r in rows[8:])
