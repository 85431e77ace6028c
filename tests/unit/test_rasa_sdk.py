"""What comes back from a Rasa action server is applied as Rasa applies it (the call itself runs against the
real rasa-sdk server in tests/stack/test_action_server.py): slot events, named responses rendered from the
domain with the new slots, followups, buttons kept; the tracker's events built from stored turns; and an
action whose server is down is answered with the intent's own response."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assistant.config import DEMO_BOT_DIR, Settings
from assistant.contracts import ActionContext, Role
from assistant.domain import Domain
from plugins.actions.rasa_sdk import RemoteAction, events_of, remote_actions
from tests.unit.apps import App, settings_for, start

CONTEXT = ActionContext("ana", "how many points", "loyalty_points", [], {"name": "Ana"}, "rest", 0.9)


def action() -> RemoteAction:
    return RemoteAction("action_loyalty_points", Settings(), Domain.load(DEMO_BOT_DIR), None, None)  # type: ignore[arg-type]


def test_slot_events_and_named_responses_are_applied() -> None:
    answer = {
        "events": [{"event": "slot", "name": "points", "value": 230},
                   {"event": "followup", "name": "utter_thank_you"}],
        "responses": [{"response": "utter_points_balance"},
                      {"text": "Pick one", "buttons": [{"title": "Redeem", "payload": "/redeem"}]}],
    }  # fmt: skip
    result = action().result(answer, CONTEXT)
    assert result.slots == {"points": 230}
    assert result.text.split("\n\n") == [
        "You have 230 points; every 100 are worth 5 off your next order, and you earn 1 point per euro spent.",
        "Pick one",
        "You're welcome! Enjoy your 230 points, and let me know if there's anything else.",
    ]
    assert result.rich is not None and result.rich.buttons == [{"title": "Redeem", "payload": "/redeem"}]
    cleared = action().result({"events": [{"event": "reset_slots"}]}, CONTEXT)
    assert cleared.slots == {"name": None} and cleared.text == "" and cleared.rich is None


def test_stored_turns_become_rasa_events() -> None:
    at = datetime(2026, 11, 30, tzinfo=UTC)
    turns = [
        {"role": Role.USER, "text": "hi", "intent": "greet", "confidence": 0.9, "entities": [], "created_at": at},
        {"role": Role.BOT, "text": "Hello!", "intent": None, "confidence": None, "entities": None, "created_at": at},
        {"role": Role.USER, "text": "gift cards?", "intent": "faq/ask_gift_cards", "confidence": 0.8,
         "entities": [], "created_at": at},
    ]  # fmt: skip
    events = events_of(turns, "rest")
    assert [e["event"] for e in events] == ["user", "action", "bot", "user", "action"]
    assert events[0]["parse_data"]["intent"] == {"name": "greet", "confidence": 0.9}
    assert events[3]["parse_data"]["intent"] == {
        "name": "faq", "confidence": 0.8, "full_retrieval_intent_name": "faq/ask_gift_cards"
    }  # fmt: skip
    assert events[0]["timestamp"] == at.timestamp() and events[2]["text"] == "Hello!"


def test_the_domains_actions_go_to_the_server_unless_a_plugin_has_them(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, action_server={"url": "http://127.0.0.1:9/webhook"})
    domain = Domain.load(DEMO_BOT_DIR)
    assert set(remote_actions(settings, domain, None, {})) == {"action_loyalty_points"}  # type: ignore[arg-type]
    assert remote_actions(settings, domain, None, {"action_loyalty_points": object()}) == {}  # type: ignore[arg-type]


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path, action_server={"url": "http://127.0.0.1:9/webhook", "timeout_s": 2})
    async with start(settings) as app:
        yield app


DEMO_LOYALTY_REPLY = (
    "You earn 1 point per euro spent, and 100 points are worth 5 off your next order. Your balance is shown "
    "under Account > Rewards."
)


async def test_with_the_server_down_the_intents_own_response_answers(app: App) -> None:
    assert await app.say("ana", "/loyalty_points") == DEMO_LOYALTY_REPLY
    _, bot = app.turn("ana")
    assert bot["reason"] == "action_failed" and "action server" in bot["error"]


async def test_an_intent_is_answered_by_the_action_its_rule_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``answers:`` in the domain (what `init --from-rasa` writes for a rule's custom action): the pipeline calls
    that action for the intent, not ``action_<intent>``."""
    import shutil

    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    bot = tmp_path / "bot"
    shutil.copytree(DEMO_BOT_DIR, bot, ignore=shutil.ignore_patterns("models", "kb"))
    domain = (bot / "domain.yml").read_text().replace("  - action_loyalty_points", "  - action_check_points")
    (bot / "domain.yml").write_text(domain + "\nanswers:\n  loyalty_points: action_check_points\n")
    settings = settings_for(tmp_path, bot_dir=bot, action_server={"url": "http://127.0.0.1:9/webhook", "timeout_s": 2})
    async with start(settings) as app:
        assert await app.say("ana", "/loyalty_points") == DEMO_LOYALTY_REPLY
        _, reply = app.turn("ana")
    assert reply["reason"] == "action_failed" and reply["error"].startswith("action_check_points: ")
