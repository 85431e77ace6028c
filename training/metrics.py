"""NLU evaluation: the classifier's metrics and the router's, on one set of predictions.

"Out-of-scope" examples are those whose gold intent is one the router hands to the LLM (``llm_intents``:
out_of_scope, chitchat, ...). Their recall is measured on the routing decision (thresholds and margin
included), because that decides what the user gets.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from sklearn.metrics import classification_report, f1_score

from assistant.config import RouterSettings
from assistant.protocols import IntentScore, ParseResult
from assistant.router import LLM, Router


@dataclass(frozen=True)
class Prediction:
    text: str
    gold: str
    intent: str | None
    confidence: float
    ranking: list[tuple[str, float]]

    def parse(self) -> ParseResult:
        return ParseResult(
            intent=IntentScore(self.intent, self.confidence) if self.intent else None,
            ranking=[IntentScore(name, confidence) for name, confidence in self.ranking],
            entities=[],
        )


def evaluate(predictions: list[Prediction], router_settings: RouterSettings) -> dict[str, Any]:
    router = Router(router_settings)
    llm_intents = set(router_settings.llm_intents)
    gold = [p.gold for p in predictions]
    predicted = [p.intent or "" for p in predictions]
    routed_to_llm = [router.decide(p.parse()).kind == LLM for p in predictions]
    in_scope = [i for i, g in enumerate(gold) if g not in llm_intents]
    out_of_scope = [i for i, g in enumerate(gold) if g in llm_intents]
    labels = sorted(set(gold))

    def share(indices: list[int], test: Any) -> float | None:
        return sum(1 for i in indices if test(i)) / len(indices) if indices else None

    llm_routed = [i for i, routed in enumerate(routed_to_llm) if routed]
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    return {
        "examples": len(predictions),
        "in_scope_examples": len(in_scope),
        "oos_examples": len(out_of_scope),
        "accuracy": share(list(range(len(gold))), lambda i: gold[i] == predicted[i]),
        "in_scope_accuracy": share(in_scope, lambda i: gold[i] == predicted[i]),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        # the router's decision: right reply, or handed to the LLM when it should be
        "in_scope_routed_accuracy": share(in_scope, lambda i: not routed_to_llm[i] and gold[i] == predicted[i]),
        "oos_recall": share(out_of_scope, lambda i: routed_to_llm[i]),
        "oos_precision": share(llm_routed, lambda i: gold[i] in llm_intents),
        "per_intent": classification_report(gold, predicted, labels=labels, output_dict=True, zero_division=0),
        "confused": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(20)],
    }


HEADLINE = ("in_scope_accuracy", "macro_f1", "oos_recall")
DENOMINATOR = {"in_scope_accuracy": "in_scope_examples", "macro_f1": "examples", "oos_recall": "oos_examples"}


def not_worse(candidate: dict[str, Any], active: dict[str, Any], tolerance: float) -> tuple[bool, list[str]]:
    """Promotion rule for NLU: no headline metric drops by more than ``tolerance``, nor by more than one
    example's worth (on a small held-out set one example flipping is noise, not a verdict). Returns the drops."""
    drops = []
    for name in HEADLINE:
        new, old = candidate.get(name), active.get(name)
        allowed = max(tolerance, 1.0 / max(1, candidate.get(DENOMINATOR[name]) or 1))
        if new is not None and old is not None and new < old - allowed - 1e-9:
            drops.append(f"{name} {old:.3f} -> {new:.3f} (allowed drop {allowed:.3f})")
    return not drops, drops
