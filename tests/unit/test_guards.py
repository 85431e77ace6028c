"""The guards (assistant/replies/guards.py): loops cut, unsafe replies withheld, contact details never streamed;
through the app, what they did is recorded on the turn, and self-harm gets the crisis reply, not the LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.replies.guards import ReplyGuard, speaks_of_self_harm
from tests.unit.apps import settings_for, start
from tests.unit.test_checks import CONTEXT


async def test_a_looping_reply_is_cut_and_the_turn_records_how(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path)
    settings.llm.max_sentences = 3
    async with start(settings) as app:
        loop = "I like it a lot. " * 6
        app.llm.script.pieces = [word + " " for word in loop.split()]
        response = await app.http.post("/webhooks/rest/stream", json={"sender": "lee", "message": "how are you"})
        tokens = "".join(
            json.loads(block.split("\n")[1].removeprefix("data: "))["text"]
            for block in response.text.strip().split("\n\n")
            if block.startswith("event: token")
        )
        _, bot = app.turn("lee")
        assert bot["text"] == "I like it a lot." and tokens == "I like it a lot."  # the repeat never streamed
        generation = json.loads(bot["generation"])
        assert generation["guards"] == ["repetition"] and generation["raw"].startswith("I like it a lot. I like")
        assert generation["settings"]["max_tokens"] == settings.llm.max_tokens
        assert generation["settings"]["stop"] == settings.llm.stop
        assert app.llm.generations[-1] is not None and app.llm.generations[-1].temperature == settings.llm.temperature
        assert bot["completion_tokens"] > 0  # counted even though the guard stopped the stream


async def test_self_harm_gets_the_crisis_reply_without_the_llm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path)) as app:
        text = await app.say("kim", "I want to kill myself")
        assert text == app.app.state.settings.llm.crisis_reply and app.llm.calls == []
        _, bot = app.turn("kim")
        assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "crisis", "crisis_reply")


async def test_an_unsafe_reply_is_withheld(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path)) as app:
        app.llm.script.pieces = ["Sure, ", "call me ", "on 0800 ", "123 4567."]
        text = await app.say("max", "how are you")
        assert text == app.app.state.settings.llm.guard_reply
        _, bot = app.turn("max")
        assert json.loads(bot["generation"])["guards"] == ["no_contacts"]


def test_the_input_guard_spots_self_harm() -> None:
    assert speaks_of_self_harm("I want to kill myself")
    assert speaks_of_self_harm("I don't want to live anymore")
    assert not speaks_of_self_harm("this weed killer kills my roses")


def feed(guard: ReplyGuard, text: str) -> str:
    shown = "".join(guard.feed(piece + " ") for piece in text.split(" "))
    return shown


def test_the_guard_cuts_a_loop_and_stops_generation() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    shown = feed(guard, "I can help. 2020 is a month in the calendar. 2020 is a month in the calendar. 2020 is")
    assert guard.stopped and guard.applied == ["repetition"]
    assert guard.finish() == "I can help. 2020 is a month in the calendar."
    assert "calendar. 2020" not in shown  # the repeat was never streamed


def test_the_guard_keeps_the_first_sentences() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=1, fallback="FALLBACK")
    feed(guard, "Hello there! I am Penny and I sell things. More")
    assert guard.stopped and guard.finish() == "Hello there!" and guard.applied == ["sentences"]


def test_the_guard_withholds_unsafe_replies_and_never_streams_contact_details() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    shown = feed(guard, "Sure, call 0800 123 4567 now and ask for Bob.")
    assert "0800" not in shown and "123" not in shown
    assert guard.finish() == "FALLBACK" and guard.applied == ["no_contacts"]
    human = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    feed(human, "I am 28 years old.")
    assert human.finish() == "FALLBACK" and "not_human" in human.applied


def test_a_clean_reply_streams_whole() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=2, fallback="FALLBACK")
    shown = feed(guard, "Happy to help with your order today.")
    final = guard.finish()
    assert final == "Happy to help with your order today." and guard.applied == []
    assert (shown + guard.remainder(final)).strip() == final


def test_guards_off_pass_the_text_through() -> None:
    guard = ReplyGuard(CONTEXT, max_sentences=1, fallback="FALLBACK", enabled=False)
    text = "I am 28 years old. Call 0800 123 4567."
    assert feed(guard, text).strip() == text and guard.finish() == text


def test_streamed_pieces_add_up_to_a_reply_cut_for_repetition() -> None:
    """Pieces that split words (as tokens do): the repeat's first word is still never shown."""
    guard = ReplyGuard(CONTEXT, max_sentences=3, fallback="FALLBACK")
    text = "A: \"A: \"I'm a joke, I'm a joke, I'm a joke"
    shown = "".join(guard.feed(text[i : i + 2]) for i in range(0, len(text), 2))
    final = guard.finish()
    assert "repetition" in guard.applied and final == 'A: "A: "I\'m a joke,'
    assert shown + guard.remainder(final) == final
