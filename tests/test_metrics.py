"""NLU evaluation metrics and the promotion rule."""

from __future__ import annotations

from assistant.config import RouterSettings
from training.metrics import Prediction, evaluate, not_worse


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
