"""The routing decision: answer with the intent's reply, or hand the message to the LLM.

Pure and synchronous, so its thresholds are easy to test and to tune.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.config import RouterSettings
from assistant.contracts import ParseResult, Reason, Route

EPSILON = 1e-9  # so a margin met exactly (0.7 - 0.5 vs 0.2) is not lost to float rounding


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: Reason
    intent: str | None = None


class Router:
    """Sends a message to the LLM when

    - the NLU is unavailable (``nlu_unavailable``) or found no intent (``no_intent``),
    - the top intent is one the LLM handles, e.g. chitchat (``llm_intent``),
    - the top confidence is below the threshold (``low_confidence``),
    - top-1 minus top-2 confidence is below the ambiguity margin (``ambiguous``);

    otherwise to the intent's reply (``confident``).
    """

    def __init__(self, settings: RouterSettings) -> None:
        self.llm_intents = frozenset(settings.llm_intents)
        self.threshold = settings.confidence_threshold
        self.margin = settings.ambiguity_margin

    def decide(self, parse: ParseResult | None) -> Decision:
        if parse is None:
            return Decision(Route.LLM, Reason.NLU_UNAVAILABLE)
        top = parse.intent
        if top is None or not top.name:
            return Decision(Route.LLM, Reason.NO_INTENT)
        if top.name in self.llm_intents:
            return Decision(Route.LLM, Reason.LLM_INTENT, top.name)
        if top.confidence < self.threshold:
            return Decision(Route.LLM, Reason.LOW_CONFIDENCE, top.name)
        runner_up = next((s.confidence for s in parse.ranking if s.name != top.name), 0.0)
        if top.confidence - runner_up < self.margin - EPSILON:
            return Decision(Route.LLM, Reason.AMBIGUOUS, top.name)
        return Decision(Route.INTENT, Reason.CONFIDENT, top.name)
