"""Retrieval intents (Rasa's ResponseSelector): the selector's choice read from Rasa's parse, answered with
``utter_<intent>/<key>`` when confident (even for an intent the LLM otherwise answers), routed like any unsure
message when not; the responses may live in the training data files, as in Rasa bots."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import DEMO_BOT_DIR, RouterSettings
from assistant.contracts import IntentScore, ParseResult, Reason, Route
from assistant.turn.router import Router
from plugins.nlu.rasa.client import parse_result
from tests.unit.apps import settings_for, start
from tests.unit.fakes import FakeNLU

RASA_PARSE = {  # the shape of Rasa 3.6's /model/parse with a ResponseSelector trained on every retrieval intent
    "text": "will it rain tomorrow",
    "intent": {"name": "chitchat", "confidence": 0.93},
    "intent_ranking": [{"name": "chitchat", "confidence": 0.93}, {"name": "greet", "confidence": 0.02}],
    "entities": [],
    "response_selector": {
        "all_retrieval_intents": ["chitchat", "faq"],
        "default": {
            "response": {"id": 1, "responses": [{"text": "..."}], "response_templates": [{"text": "..."}],
                         "confidence": 0.88, "intent_response_key": "chitchat/ask_weather",
                         "utter_action": "utter_chitchat/ask_weather", "template_name": "utter_chitchat/ask_weather"},
            "ranking": [{"id": 1, "confidence": 0.88, "intent_response_key": "chitchat/ask_weather"}],
        },
    },
}  # fmt: skip


def test_the_selectors_choice_is_read_from_rasas_parse() -> None:
    parse = parse_result(RASA_PARSE, "nlu-0001")
    assert parse.retrieval == IntentScore("chitchat/ask_weather", 0.88)
    other = parse_result({**RASA_PARSE, "intent": {"name": "greet", "confidence": 0.9}})
    assert other.retrieval is None  # not a retrieval intent: the selection does not apply
    assert parse_result({k: v for k, v in RASA_PARSE.items() if k != "response_selector"}).retrieval is None


def test_the_router_answers_a_confident_selection_and_routes_a_weak_one() -> None:
    router = Router(RouterSettings())  # chitchat is an LLM intent
    top = IntentScore("chitchat", 0.93)

    def decide(selected: float, confidence: float = 0.93) -> tuple[Route, Reason, str | None]:
        intent = IntentScore("chitchat", confidence)
        parse = ParseResult(intent, [intent], [], retrieval=IntentScore("chitchat/ask_weather", selected))
        decision = router.decide(parse)
        return decision.route, decision.reason, decision.intent

    assert decide(0.88) == (Route.INTENT, Reason.CONFIDENT, "chitchat/ask_weather")
    assert decide(0.3) == (Route.LLM, Reason.LOW_SELECTION, "chitchat")
    assert decide(0.88, confidence=0.3) == (Route.LLM, Reason.LOW_CONFIDENCE, "chitchat")
    assert router.decide(ParseResult(top, [top], [])).reason == Reason.LLM_INTENT  # no selector: as before


class SelectingNLU(FakeNLU):
    async def parse(self, text: str) -> ParseResult:
        if text.startswith("will it rain"):
            return parse_result(RASA_PARSE, "nlu-test")
        return await super().parse(text)


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    bot = tmp_path / "bot"
    shutil.copytree(DEMO_BOT_DIR, bot, ignore=shutil.ignore_patterns("models", "kb"))
    responses = {"responses": {"utter_chitchat/ask_weather": [{"text": "I can't see outside, but I hope it's sunny!"}]}}
    (bot / "data" / "responses.yml").write_text(yaml.safe_dump(responses))
    async with start(settings_for(tmp_path, bot_dir=bot), nlu=SelectingNLU) as app:
        yield app


async def test_a_retrieval_intent_is_answered_from_its_response(app: Any) -> None:
    assert await app.say("ana", "will it rain tomorrow") == "I can't see outside, but I hope it's sunny!"
    user, bot = app.turn("ana")
    # logged under the key, as sure as the less sure choice: what an auto-labelled export trains Rasa with
    assert (user["intent"], user["confidence"]) == ("chitchat/ask_weather", 0.88)
    assert (user["route"], user["reason"]) == ("intent", "confident")
    assert bot["answered_by"] == "utter_chitchat/ask_weather" and not app.llm.calls
