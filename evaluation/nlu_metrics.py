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
from assistant.contracts import IntentScore, ParseResult, Route
from assistant.turn.router import Router


@dataclass(frozen=True)
class Prediction:
    text: str
    gold: str
    intent: str | None
    confidence: float
    ranking: list[tuple[str, float]]
    # a retrieval intent's selected response key and its confidence (Rasa's ResponseSelector), e.g. "faq/ask_x"
    selected: tuple[str, float] | None = None

    @property
    def label(self) -> str | None:
        """What was predicted, as the test data names it: ``faq/ask_x`` for a retrieval intent."""
        label = self.parse().label
        return label.name if label else None

    def parse(self) -> ParseResult:
        return ParseResult(
            intent=IntentScore(self.intent, self.confidence) if self.intent else None,
            ranking=[IntentScore(name, confidence) for name, confidence in self.ranking],
            entities=[],
            retrieval=IntentScore(*self.selected) if self.selected else None,
        )


def evaluate(predictions: list[Prediction], router_settings: RouterSettings) -> dict[str, Any]:
    router = Router(router_settings)
    llm_intents = set(router_settings.llm_intents)
    gold = [p.gold for p in predictions]
    # a test set may label a retrieval intent without its keys ("chitchat"): any of its responses is then right
    unkeyed = set(gold)
    predicted = [_family(p.label or "", unkeyed) for p in predictions]
    routed_to_llm = [router.decide(p.parse()).route == Route.LLM for p in predictions]
    in_scope = [i for i, g in enumerate(gold) if g not in llm_intents]
    out_of_scope = [i for i, g in enumerate(gold) if g in llm_intents]
    labels = sorted(set(gold))

    def share(indices: list[int], test: Any) -> float | None:
        return sum(1 for i in indices if test(i)) / len(indices) if indices else None

    llm_routed = [i for i, routed in enumerate(routed_to_llm) if routed]
    confusions = Counter((g, p) for g, p in zip(gold, predicted, strict=True) if g != p)
    per_intent = classification_report(gold, predicted, labels=labels, output_dict=True, zero_division=0)
    for label in labels:  # like Rasa's intent_report.json
        per_intent[label]["confused_with"] = {}
    for (g, p), count in confusions.most_common():
        per_intent[g]["confused_with"][p or "(none)"] = count
    return {
        "examples": len(predictions),
        "in_scope_examples": len(in_scope),
        "oos_examples": len(out_of_scope),
        "accuracy": share(list(range(len(gold))), lambda i: gold[i] == predicted[i]),
        "in_scope_accuracy": share(in_scope, lambda i: gold[i] == predicted[i]),
        "macro_f1": float(f1_score(gold, predicted, labels=labels, average="macro", zero_division=0)),
        # the router's decision: right reply, or handed to the LLM when it should be
        "in_scope_routed_accuracy": share(in_scope, lambda i: not routed_to_llm[i] and gold[i] == predicted[i]),
        # handed to the LLM, or (a curated retrieval intent such as chitchat) answered by that intent itself
        "oos_recall": share(out_of_scope, lambda i: routed_to_llm[i] or predicted[i] == gold[i] != "out_of_scope"),
        "oos_precision": share(llm_routed, lambda i: gold[i] in llm_intents),
        "per_intent": per_intent,
        "confused": [{"gold": g, "predicted": p, "count": n} for (g, p), n in confusions.most_common(20)],
    }


def _family(label: str, unkeyed: set[str]) -> str:
    """``chitchat/ask_age`` as ``chitchat`` when the test set names the retrieval intent without keys."""
    family = label.split("/", 1)[0]
    return family if "/" in label and family in unkeyed else label


HEADLINE = ("in_scope_accuracy", "macro_f1", "oos_recall")
# the NLU's routes for the reply sets' messages (evaluation.replies.nlu_routes)
ROUTES = ("smalltalk_not_business", "out_of_scope_not_answered")
DENOMINATOR = {
    "in_scope_accuracy": "in_scope_examples", "macro_f1": "examples", "oos_recall": "oos_examples",
    "smalltalk_not_business": "smalltalk_messages", "out_of_scope_not_answered": "out_of_scope_messages",
}  # fmt: skip


def not_worse(
    candidate: dict[str, Any], active: dict[str, Any], tolerance: float, names: tuple[str, ...] = HEADLINE
) -> tuple[bool, list[str]]:
    """Promotion rule for NLU: no figure of ``names`` drops by more than ``tolerance``, nor by more than one
    example's worth (on a small held-out set one example flipping is noise, not a verdict). Returns the drops."""
    drops = []
    for name in names:
        new, old = candidate.get(name), active.get(name)
        allowed = max(tolerance, 1.0 / max(1, candidate.get(DENOMINATOR[name]) or 1))
        if new is not None and old is not None and new < old - allowed - 1e-9:
            drops.append(f"{name} {old:.3f} -> {new:.3f} (allowed drop {allowed:.3f})")
    return not drops, drops


@dataclass(frozen=True)
class SweepPoint:
    threshold: float
    margin: float
    in_scope_accuracy: float  # right intent and answered by it (not handed to the LLM)
    oos_recall: float
    allowed: bool  # in-scope accuracy within ``max_drop`` of the no-threshold baseline

    @property
    def objective(self) -> float:
        return self.in_scope_accuracy + self.oos_recall


def routing_scores(predictions: list[Prediction], router_settings: RouterSettings) -> tuple[float, float]:
    """(in-scope accuracy of the routing decision, out-of-scope recall) for one threshold/margin."""
    router = Router(router_settings)
    llm_intents = set(router_settings.llm_intents)
    right = oos_total = oos_caught = in_total = 0
    unkeyed = {p.gold for p in predictions}
    for p in predictions:
        to_llm = router.decide(p.parse()).route == Route.LLM
        if p.gold in llm_intents:
            oos_total += 1
            oos_caught += to_llm or _family(p.label or "", unkeyed) == p.gold != "out_of_scope"
        else:
            in_total += 1
            right += (not to_llm) and p.label == p.gold
    return right / max(1, in_total), oos_caught / max(1, oos_total)


def sweep(
    predictions: list[Prediction],
    router_settings: RouterSettings,
    thresholds: list[float] | None = None,
    margins: list[float] | None = None,
    max_drop: float = 0.01,
) -> tuple[SweepPoint, list[SweepPoint]]:
    """Try every threshold x margin; pick the one maximising in-scope accuracy + out-of-scope recall among
    those whose in-scope accuracy is at most ``max_drop`` below the no-threshold baseline.
    Ties go to the lower threshold and margin (fewer messages taken from their intent)."""
    thresholds = thresholds if thresholds is not None else [round(0.01 * i, 2) for i in range(100)]
    margins = margins if margins is not None else [0.0, 0.02, 0.05, 0.1, 0.15, 0.2]

    def at(threshold: float, margin: float) -> tuple[float, float]:
        settings = router_settings.model_copy(update={"confidence_threshold": threshold, "ambiguity_margin": margin})
        return routing_scores(predictions, settings)

    baseline, _ = at(0.0, 0.0)
    grid = []
    for threshold in thresholds:
        for margin in margins:
            accuracy, recall = at(threshold, margin)
            grid.append(SweepPoint(threshold, margin, accuracy, recall, accuracy >= baseline - max_drop - 1e-9))
    best = max((p for p in grid if p.allowed), key=lambda p: (round(p.objective, 9), -p.threshold, -p.margin))
    return best, grid
