"""The LLM's promotion gate (training/llm_gate.py): what passes, what fails and why, on hand-made figures."""

from __future__ import annotations

from typing import Any

from assistant.config import LLMGateSettings
from evaluation.llm import LLMEvaluation, SetFigures
from training.llm_gate import decide

CHECKS = {"not_human": 1.0, "safe": 1.0}


def run(model: str, similarity: float, looping: float, words: float, behaviour: dict[str, float] | None = None,
        withheld: float = 0.0, model_looping: float | None = None) -> LLMEvaluation:  # fmt: skip
    talk: dict[str, Any] = {
        "similarity": similarity, "token_f1": 0.2, "looping": looping, "distinct_2": 0.8, "withheld": withheld,
        "loop_cut": 0.0, "words_median": words, "reference_words_median": 5,
        "model_looping": looping if model_looping is None else model_looping,
    }  # fmt: skip
    sets = [
        SetFigures("smalltalk", "reference", 40, talk, dict(CHECKS), {}),
        SetFigures("behaviour", "behaviour", 20, {"withheld": withheld}, behaviour or dict(CHECKS), {}),
    ]
    return LLMEvaluation(model, {}, True, sets)


def test_a_candidate_as_good_as_the_served_model_passes() -> None:
    gate = decide(run("llm-0002", 0.50, 0.0, 9), run("base", 0.45, 0.0, 12), LLMGateSettings())
    assert gate.passed and gate.reason().startswith("passed all")


def grounded(model: str, token_f1: float, abstention_recall: float, over_refusal: float) -> LLMEvaluation:
    figures = {"similarity": token_f1 * 2, "token_f1": token_f1, "abstention_recall": abstention_recall,
               "over_refusal": over_refusal, "looping": 0.0, "withheld": 0.0, "words_median": 12}  # fmt: skip
    return LLMEvaluation(model, {}, True, [SetFigures("kb", "grounded", 20, figures, dict(CHECKS), {})])


def test_grounded_sets_gate_abstention_and_report_answer_overlap() -> None:
    served = grounded("base", 0.20, 0.75, 0.20)
    # answers that overlap the references less (fewer words, one more case declined) are reported, not gated
    assert decide(grounded("llm-0002", 0.12, 0.75, 0.25), served, LLMGateSettings()).passed
    # declining fewer unanswerable questions, or more answerable ones, beyond a case's worth fails
    worse = decide(grounded("llm-0002", 0.20, 0.55, 0.35), served, LLMGateSettings())
    assert [c.name for c in worse.failed] == ["kb: abstention_recall", "kb: over_refusal"]
    assert "kb: abstention_recall 0.550 (needs >= 0.700" in worse.reason()


def test_lower_similarity_beyond_the_tolerance_fails_and_is_named() -> None:
    gate = decide(run("llm-0002", 0.40, 0.0, 9), run("base", 0.45, 0.0, 9), LLMGateSettings())
    assert not gate.passed
    assert [c.name for c in gate.failed] == ["smalltalk: similarity"]
    assert "smalltalk: similarity 0.400 (needs >= 0.430" in gate.reason()


def test_loops_length_and_any_failed_behaviour_check_fail() -> None:
    loopy = run("llm-0002", 0.45, 0.30, 40, behaviour={"not_human": 0.95, "safe": 1.0})
    gate = decide(loopy, run("base", 0.45, 0.0, 12, behaviour={"not_human": 0.9, "safe": 1.0}), LLMGateSettings())
    failed = {c.name for c in gate.failed}
    # a behaviour check must pass on every reply, whatever the served model does
    assert failed == {
        "smalltalk: looping",
        "smalltalk: model_looping",
        "smalltalk: words_median",
        "behaviour: not_human",
    }


def test_a_model_that_loops_is_caught_even_when_the_guards_cut_its_replies() -> None:
    hidden = run("llm-0002", 0.45, 0.0, 5, model_looping=0.6)  # the guards cut every loop: replies look fine
    gate = decide(hidden, run("base", 0.45, 0.0, 9, model_looping=0.05), LLMGateSettings())
    assert [c.name for c in gate.failed] == ["smalltalk: model_looping"]


def test_one_case_worth_of_noise_is_allowed_on_small_samples() -> None:
    small = run("llm-0002", 0.45, 1 / 40, 9)  # one looping reply of 40: within one case's worth (0.025)
    assert decide(small, run("base", 0.45, 0.0, 9), LLMGateSettings()).passed
    two = run("llm-0002", 0.45, 2 / 40, 9)
    assert [c.name for c in decide(two, run("base", 0.45, 0.0, 9), LLMGateSettings()).failed] == [
        "smalltalk: looping",
        "smalltalk: model_looping",
    ]


def test_a_limit_met_exactly_passes_on_figures_kept_to_four_decimals() -> None:
    """Seen in CI: on 6 behaviour cases the served model withheld 2 (0.3333) and the adapter 3 (0.5): one case
    more is allowed, and 0.3333 + 1/6 falling short of 0.5 by rounding must not fail it."""

    def six(model: str, withheld: float) -> LLMEvaluation:
        figures = SetFigures("behaviour", "behaviour", 6, {"withheld": withheld}, dict(CHECKS), {})
        return LLMEvaluation(model, {}, True, [figures])

    assert decide(six("llm-0001", 0.5), six("base", 0.3333), LLMGateSettings()).passed
    assert not decide(six("llm-0001", 0.6667), six("base", 0.3333), LLMGateSettings()).passed  # two cases more
