"""The turn (assistant/turn/pipeline.py) through the app in-process, with fake backends: every route and reason,
what is stored, streaming."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path

import pytest

from tests.unit.apps import (
    FALLBACK,
    App,
    settings_for,
    start,
)
from tests.unit.fakes import NLU_DOWN


async def test_confident_intent_gets_its_templated_reply(running: App) -> None:
    text = await running.say("ana", "hello")
    user, bot = running.turn("ana")
    assert (user["intent"], user["route"], user["reason"]) == ("greet", "intent", "confident")
    assert (bot["route"], bot["reason"], bot["answered_by"], bot["text"]) == (
        "intent",
        "confident",
        "utter_greet",
        text,
    )
    assert user["nlu_model"] == "fake-nlu.tar.gz" and json.loads(user["ranking"])[0]["name"] == "greet"
    assert running.llm.calls == []


async def test_action_answers_its_intent_and_remembers_slots(running: App) -> None:
    assert await running.say("bo", "where is order 4711") == "Order 4711 is on its way."
    _, bot = running.turn("bo")
    assert (bot["answered_by"], bot["reason"]) == ("action_order_status", "confident")
    (conversation,) = running.rows("SELECT slots FROM conversations WHERE sender_id = 'bo'")
    assert json.loads(conversation["slots"]) == {"order_id": "4711", "last_order": "4711"}


async def test_a_failing_action_gets_the_fallback_and_its_error_is_stored(running: App) -> None:
    assert await running.say("cy", "break the action") == FALLBACK
    _, bot = running.turn("cy")
    assert (bot["route"], bot["reason"]) == ("intent", "action_failed")
    assert "ZeroDivisionError" in bot["error"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("how are you", "llm_intent"),
        ("hmm maybe", "low_confidence"),
        ("hi or bye", "ambiguous"),
        ("nothing at all", "no_intent"),
        (NLU_DOWN, "nlu_unavailable"),
        ("what is my balance", "no_response"),
    ],
)
async def test_llm_routes_and_their_reasons(running: App, text: str, reason: str) -> None:
    sender = f"u-{uuid.uuid4().hex[:6]}"
    assert await running.say(sender, text) == "I am fine, thanks!"
    user, bot = running.turn(sender)
    assert (bot["route"], bot["reason"], bot["answered_by"], bot["error"]) == ("llm", reason, "base", None)
    assert (bot["prompt_tokens"], bot["completion_tokens"]) == (12, 3)
    prompt = json.loads(bot["prompt"])
    assert prompt[0]["role"] == "system" and prompt[-1] == {"role": "user", "content": text}
    assert (user["error"] is not None) == (reason == "nlu_unavailable")


async def test_llm_down_gets_the_fallback(running: App) -> None:
    running.llm.script.fail = True
    assert await running.say("dee", "how are you") == FALLBACK
    _, bot = running.turn("dee")
    assert (bot["route"], bot["reason"]) == ("llm", "llm_unavailable") and "fake LLM is down" in bot["error"]


async def test_an_empty_llm_reply_gets_the_fallback(running: App) -> None:
    running.llm.script.pieces = ["  ", ""]
    assert await running.say("eve", "how are you") == FALLBACK
    assert running.turn("eve")[1]["reason"] == "llm_empty"


async def test_history_goes_into_the_prompt(running: App) -> None:
    await running.say("fay", "hello")
    await running.say("fay", "how are you")
    _, messages = running.llm.calls[-1]
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "hello"


async def test_speculative_start_is_cancelled_for_intent_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path)
    settings.llm.speculative_start = True
    async with start(settings) as app:
        app.llm.script.hang = True
        app.nlu.delay_s = 0.2  # the LLM starts while the NLU parses
        await app.say("gus", "hello")
        await asyncio.sleep(0.05)
        assert len(app.llm.calls) == 1 and app.llm.cancelled == 1  # started while parsing, then cancelled
        assert app.turn("gus")[1]["answered_by"] == "utter_greet"


async def test_stream_sends_tokens_then_the_stored_message(running: App) -> None:
    response = await running.http.post("/webhooks/rest/stream", json={"sender": "hal", "message": "how are you"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
        for block in response.text.strip().split("\n\n")
    ]
    names = [e for e, _ in events]
    assert names[-2:] == ["message", "done"] and set(names[:-2]) == {"token"} and len(names) >= 3
    message = events[-2][1]
    assert message["text"] == "I am fine, thanks!" and message["route"] == "llm" and message["reason"] == "llm_intent"
    # the guards hold back the last words while the reply streams; the pieces add up to the stored reply
    assert "".join(data["text"] for name, data in events if name == "token") == message["text"]
    assert running.turn("hal")[1]["id"] == message["message_id"]
