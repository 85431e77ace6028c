"""NLU evaluation metrics and the promotion rule."""

from __future__ import annotations

from assistant.config import RouterSettings
from evaluation.nlu_metrics import Prediction, evaluate, not_worse, routing_scores


def prediction(gold: str, intent: str, confidence: float = 0.9, runner_up: float = 0.05) -> Prediction:
    return Prediction(f"{gold}->{intent}", gold, intent, confidence, [(intent, confidence), ("other", runner_up)])


def test_routing_metrics_use_the_router_decision() -> None:
    router = RouterSettings(llm_intents=["out_of_scope"], confidence_threshold=0.5, ambiguity_margin=0.1)
    predictions = [
        prediction("greet", "greet"),
        prediction("greet", "greet", confidence=0.3),  # right intent, but too unsure: goes to the LLM
        prediction("order_status", "cancel_order"),
        prediction("out_of_scope", "out_of_scope"),
        prediction("out_of_scope", "greet", confidence=0.4),  # wrong intent, but the threshold saves it
        prediction("out_of_scope", "greet"),  # confidently wrong: answered with the greeting
    ]
    m = evaluate(predictions, router)
    assert m["in_scope_accuracy"] == 2 / 3
    assert m["in_scope_routed_accuracy"] == 1 / 3
    assert m["oos_recall"] == 2 / 3
    assert m["oos_precision"] == 2 / 3  # of the three sent to the LLM, two should have gone there
    assert m["confused"][0] == {"gold": "out_of_scope", "predicted": "greet", "count": 2}
    assert (m["in_scope_examples"], m["oos_examples"]) == (3, 3)
    assert 0 < m["macro_f1"] < 1


def test_promotion_tolerates_one_example_but_not_more() -> None:
    active = {"in_scope_accuracy": 0.95, "macro_f1": 0.9, "oos_recall": 1.0, "examples": 100,
              "in_scope_examples": 94, "oos_examples": 6}  # fmt: skip
    one_flip = {**active, "oos_recall": 5 / 6}
    two_flips = {**active, "oos_recall": 4 / 6}
    assert not_worse(one_flip, active, 0.01) == (True, [])
    ok, drops = not_worse(two_flips, active, 0.01)
    assert not ok and drops[0].startswith("oos_recall 1.000 -> 0.667")
    big = {**active, "in_scope_accuracy": 0.90}
    assert not not_worse(big, active, 0.01)[0]
    assert not_worse(big, active, 0.06)[0]


def test_sweep_picks_the_best_allowed_threshold_by_hand() -> None:
    """Four in-scope examples and two out-of-scope ones, with hand-worked scores:

    threshold 0.0: in-scope 3/4 right (the wrong one is 'b' for 'a'), oos caught 0/2  -> 0.75 + 0.0
    threshold 0.5: in-scope 3/4 (every right one is >= 0.6), oos caught 1/2 (0.4)     -> 0.75 + 0.5
    threshold 0.65: in-scope 2/4 (the 0.6 one goes to the LLM), oos caught 2/2         -> 0.50 + 1.0, but
    a 25-point drop in in-scope accuracy is not allowed (max 1 point), so 0.5 wins."""
    from evaluation.nlu_metrics import routing_scores, sweep

    def p(gold: str, intent: str, confidence: float) -> Prediction:
        return Prediction("t", gold, intent, confidence, [(intent, confidence), ("z", (1 - confidence) / 10)])

    predictions = [
        p("a", "a", 0.9), p("a", "b", 0.8), p("b", "b", 0.6), p("c", "c", 0.95),
        p("out_of_scope", "a", 0.4), p("out_of_scope", "c", 0.62),
    ]  # fmt: skip
    router = RouterSettings(llm_intents=["out_of_scope"], confidence_threshold=0.0, ambiguity_margin=0.0)
    assert routing_scores(predictions, router) == (0.75, 0.0)
    best, grid = sweep(predictions, router, thresholds=[0.0, 0.5, 0.65], margins=[0.0])
    assert (best.threshold, best.in_scope_accuracy, best.oos_recall) == (0.5, 0.75, 0.5)
    assert [(g.threshold, g.allowed) for g in grid] == [(0.0, True), (0.5, True), (0.65, False)]
    loose, _ = sweep(predictions, router, thresholds=[0.0, 0.5, 0.65], margins=[0.0], max_drop=0.3)
    assert loose.threshold == 0.65 and loose.objective == 1.5


def test_retrieval_intents_are_judged_on_the_selected_response() -> None:
    """A retrieval intent is right only when the ResponseSelector picked the test's key, and an unsure selection
    is routed to the LLM, as the router does it."""
    router = RouterSettings(llm_intents=["out_of_scope"], confidence_threshold=0.5, ambiguity_margin=0.1)

    def faq(gold: str, selected: str, selection: float = 0.9) -> Prediction:
        return Prediction("t", gold, "faq", 0.95, [("faq", 0.95), ("greet", 0.01)], (selected, selection))

    predictions = [
        faq("faq/ask_gift_cards", "faq/ask_gift_cards"),
        faq("faq/ask_newsletter", "faq/ask_gift_cards"),  # right intent, wrong answer
        faq("faq/ask_price_match", "faq/ask_price_match", selection=0.3),  # right but unsure: to the LLM
        faq("out_of_scope", "faq/ask_newsletter", selection=0.2),  # the weak selection saves it
    ]
    assert [p.label for p in predictions][:2] == ["faq/ask_gift_cards", "faq/ask_gift_cards"]
    m = evaluate(predictions, router)
    assert m["in_scope_accuracy"] == 2 / 3
    assert m["in_scope_routed_accuracy"] == 1 / 3
    assert m["oos_recall"] == 1.0
    assert m["confused"][0]["gold"] == "faq/ask_newsletter"


def test_a_curated_retrieval_intent_labelled_without_keys_is_right_with_any_of_its_replies() -> None:
    """The demo's test set labels small talk `chitchat`: a confident `chitchat/<topic>` selection answers it with
    a curated reply, which is right (not an out-of-scope message answered by an intent), and so is the LLM."""
    router = RouterSettings(llm_intents=["chitchat", "out_of_scope"], confidence_threshold=0.5, ambiguity_margin=0.1)

    def talk(gold: str, selected: str | None, selection: float = 0.9) -> Prediction:
        chosen = (selected, selection) if selected else None
        return Prediction("t", gold, "chitchat", 0.95, [("chitchat", 0.95), ("greet", 0.01)], chosen)

    predictions = [
        talk("chitchat", "chitchat/tell_joke"),  # curated reply
        talk("chitchat", "chitchat/ask_age", selection=0.2),  # unsure selection: the LLM
        talk("out_of_scope", "chitchat/tell_joke"),  # an open question answered with a joke: wrong
        prediction("greet", "greet"),
    ]
    m = evaluate(predictions, router)
    assert m["oos_recall"] == 2 / 3 and m["oos_examples"] == 3
    assert m["per_intent"]["chitchat"]["recall"] == 1.0
    assert routing_scores(predictions, router) == (1.0, 2 / 3)
