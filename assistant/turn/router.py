"""The routing decision: answer with the intent's reply, or hand the message to the LLM.

Pure and synchronous, so its thresholds are easy to test and to tune.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from assistant.config import RouterSettings
from assistant.contracts import IntentScore, ParseResult, Reason, Route

EPSILON = 1e-9  # so a margin met exactly (0.7 - 0.5 vs 0.2) is not lost to float rounding
# Rasa's FallbackClassifier names an unsure parse so (its confidence is the classifier's threshold, not a score)
FALLBACK_INTENT = "nlu_fallback"


@dataclass(frozen=True)
class Decision:
    route: Route
    reason: Reason
    intent: str | None = None


class Router:
    """Sends a message to the LLM when

    - the NLU is unavailable (``nlu_unavailable``) or found no intent (``no_intent``),
    - the top intent is one the LLM handles, e.g. chitchat (``llm_intent``),
    - the top confidence is below the threshold, or Rasa's FallbackClassifier said ``nlu_fallback``
      (``low_confidence``),
    - top-1 minus top-2 confidence is below the ambiguity margin (``ambiguous``),
    - a retrieval intent's selected response is below the threshold (``low_selection``);

    otherwise to the intent's reply (``confident``; for a retrieval intent, the selected ``intent/key``).
    """

    def __init__(self, settings: RouterSettings) -> None:
        self.llm_intents = frozenset(settings.llm_intents)
        self.curated = settings.curated
        self.threshold = settings.confidence_threshold
        self.margin = settings.ambiguity_margin

    def _retrieval(self, top: IntentScore, selected: IntentScore) -> Decision:
        """A retrieval intent (Rasa's ResponseSelector): answered with ``utter_<intent>/<key>`` when both the
        intent and the selection are confident, else routed as any unsure message (even a retrieval intent that
        is otherwise the LLM's, such as chitchat: a confident FAQ answer wins over a generated one)."""
        if top.confidence < self.threshold:
            return Decision(Route.LLM, Reason.LOW_CONFIDENCE, top.name)
        if selected.confidence < self.threshold:
            return Decision(Route.LLM, Reason.LOW_SELECTION, top.name)
        return Decision(Route.INTENT, Reason.CONFIDENT, selected.name)

    def decide(self, parse: ParseResult | None) -> Decision:
        if parse is None:
            return Decision(Route.LLM, Reason.NLU_UNAVAILABLE)
        top = parse.intent
        if top is None or not top.name:
            return Decision(Route.LLM, Reason.NO_INTENT)
        curated = self.curated or top.name not in self.llm_intents
        if parse.retrieval is not None and parse.retrieval.name.startswith(f"{top.name}/") and curated:
            return self._retrieval(top, parse.retrieval)
        if top.name in self.llm_intents:
            return Decision(Route.LLM, Reason.LLM_INTENT, top.name)
        if top.confidence < self.threshold or top.name == FALLBACK_INTENT:
            return Decision(Route.LLM, Reason.LOW_CONFIDENCE, top.name)
        runner_up = next((s.confidence for s in parse.ranking if s.name != top.name), 0.0)
        if top.confidence - runner_up < self.margin - EPSILON:
            return Decision(Route.LLM, Reason.AMBIGUOUS, top.name)
        return Decision(Route.INTENT, Reason.CONFIDENT, top.name)


def smalltalk_share(parse: ParseResult | None, intents: frozenset[str]) -> float:
    """How much of the NLU's ranking the small-talk intents hold: what tells an unsure "you are fired" (small
    talk) from an unsure "who won the world cup?" (an open question), without a word list."""
    if parse is None:
        return 0.0
    return sum(score.confidence for score in parse.ranking if score.name in intents)


# Rasa's button payloads: `/intent`, `/intent@0.9`, `/intent{"entity": "value"}` (its RegexMessageHandler)
PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z0-9_.\-/]+)(?:@(?P<confidence>[0-9.]+))?(?P<entities>\{.*\})?$", re.DOTALL)


def payload_parse(text: str) -> ParseResult | None:
    """The parse a button's payload stands for (None if the text is not one): taken as said, without the NLU,
    as Rasa takes it. Entities are ``{"name": value}`` or ``{"name": [values]}``."""
    match = PAYLOAD.match(text.strip())
    if match is None:
        return None
    try:
        confidence = min(1.0, float(match["confidence"])) if match["confidence"] else 1.0
        given = json.loads(match["entities"]) if match["entities"] else {}
    except ValueError:
        return None
    if not isinstance(given, dict):
        return None
    entities = [
        {"entity": str(name), "value": value}
        for name, values in given.items()
        for value in (values if isinstance(values, list) else [values])
    ]
    intent = IntentScore(match["intent"], confidence)
    return ParseResult(intent=intent, ranking=[intent], entities=entities, model="payload")
