"""LLM turns through the app (in-process, fake LLM): the guards act on what is streamed and stored, the
settings and the guards' work are recorded on the turn, and self-harm gets the crisis reply, not the LLM."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.unit.apps import settings_for, start


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
