"""The routing decision's thresholds, one rule at a time."""

import pytest

from assistant.config import RouterSettings
from assistant.contracts import IntentScore, ParseResult, Reason, Route
from assistant.turn.router import Decision, Router, smalltalk_share

ROUTER = Router(
    RouterSettings(llm_intents=["chitchat", "out_of_scope"], confidence_threshold=0.6, ambiguity_margin=0.2)
)


def parse(*scores: tuple[str, float]) -> ParseResult:
    ranking = [IntentScore(name, conf) for name, conf in scores]
    return ParseResult(intent=ranking[0] if ranking else None, ranking=ranking, entities=[])


@pytest.mark.parametrize(
    ("result", "kind", "reason"),
    [
        (None, "llm", "nlu_unavailable"),
        (parse(), "llm", "no_intent"),
        (parse(("chitchat", 0.99), ("greet", 0.01)), "llm", "llm_intent"),
        (parse(("out_of_scope", 0.9), ("greet", 0.05)), "llm", "llm_intent"),
        (parse(("greet", 0.59), ("goodbye", 0.1)), "llm", "low_confidence"),
        (parse(("greet", 0.6), ("goodbye", 0.1)), "intent", "confident"),  # threshold is inclusive
        (parse(("greet", 0.7), ("goodbye", 0.51)), "llm", "ambiguous"),
        (parse(("greet", 0.7), ("goodbye", 0.5)), "intent", "confident"),  # margin exactly met
        (parse(("greet", 0.95)), "intent", "confident"),  # no runner-up counts as 0
        # Rasa's FallbackClassifier (threshold 0.7 here): unsure, whatever the confidence it reports
        (parse(("nlu_fallback", 0.7), ("greet", 0.4)), "llm", "low_confidence"),
    ],
)
def test_route(result: ParseResult | None, kind: str, reason: str) -> None:
    route = ROUTER.decide(result)
    assert (route.route, route.reason) == (kind, reason)
    if result is not None and result.intent is not None:
        assert route.intent == result.intent.name


def test_llm_intent_wins_over_confidence_rules() -> None:
    """chitchat goes to the LLM even when it is low-confidence or ambiguous: the reason says why."""
    assert ROUTER.decide(parse(("chitchat", 0.3), ("greet", 0.29))).reason == "llm_intent"


def test_thresholds_come_from_settings() -> None:
    lenient = Router(RouterSettings(confidence_threshold=0.1, ambiguity_margin=0.0, llm_intents=[]))
    assert lenient.decide(parse(("chitchat", 0.2), ("greet", 0.2))).route == "intent"


def test_the_small_talk_share_adds_the_small_talk_intents_of_the_ranking() -> None:
    talk = frozenset({"chitchat", "greet"})
    assert smalltalk_share(parse(("out_of_scope", 0.5), ("chitchat", 0.3), ("greet", 0.1), ("order", 0.1)), talk) == (
        pytest.approx(0.4)
    )
    assert smalltalk_share(parse(("out_of_scope", 0.9), ("order", 0.1)), talk) == 0.0
    assert smalltalk_share(None, talk) == 0.0


def test_curated_off_sends_a_confident_chitchat_selection_to_the_llm() -> None:
    chosen = ParseResult(
        intent=IntentScore("chitchat", 0.9), ranking=[IntentScore("chitchat", 0.9)], entities=[],
        retrieval=IntentScore("chitchat/ask_age", 0.95),
    )  # fmt: skip
    faq = ParseResult(
        intent=IntentScore("faq", 0.9), ranking=[IntentScore("faq", 0.9)], entities=[],
        retrieval=IntentScore("faq/ask_gift_cards", 0.95),
    )  # fmt: skip
    on = Router(RouterSettings(llm_intents=["chitchat"]))
    off = Router(RouterSettings(llm_intents=["chitchat"], curated=False))
    assert on.decide(chosen) == Decision(Route.INTENT, Reason.CONFIDENT, "chitchat/ask_age")
    assert off.decide(chosen) == Decision(Route.LLM, Reason.LLM_INTENT, "chitchat")
    assert off.decide(faq) == Decision(Route.INTENT, Reason.CONFIDENT, "faq/ask_gift_cards")  # not the LLM's
