"""Open questions through the app (in-process: fake NLU, LLM and embedder; real store and knowledge base):
answered from the passages with citations (quoted, or written by the LLM and checked), or declined; small
talk untouched; follow-ups use the context."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.apps import App, app_with_kb
from tests.unit.fakes import KB_DOWN, NLU_DOWN


@pytest.fixture
async def kb_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    """Answers written by the LLM from the passages (``kb.answer: generate``)."""
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with app_with_kb(tmp_path, answer="generate") as app:
        yield app


def sse(text: str) -> list[tuple[str, dict[str, Any]]]:
    events = []
    for block in text.strip().split("\n\n"):
        name, data = block.split("\n")
        events.append((name.removeprefix("event: "), json.loads(data.removeprefix("data: "))))
    return events


async def test_an_answerable_question_is_answered_from_the_passages_with_citations(kb_app: App) -> None:
    kb_app.llm.script.pieces = ["We ship kettles ", "to Norway [1]. ", "It takes six ", "working days."]
    response = await kb_app.http.post(
        "/webhooks/rest/webhook", json={"sender": "ola", "message": "do you ship kettles to norway"}
    )
    text, custom = response.json()
    assert text["text"] == "We ship kettles to Norway [1]. It takes six working days [1]."
    (citation,) = custom["custom"]["citations"]
    assert custom["recipient_id"] == "ola" and citation["n"] == 1 and citation["title"] == "Shipping"
    assert citation["source"].endswith("/kb/shipping.md")

    _, bot = kb_app.turn("ola")
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "grounded", "base")
    retrieval = json.loads(bot["retrieval"])
    assert retrieval["kb_version"] == "kb-0001" and retrieval["evidence"] is True
    assert retrieval["passages"][0]["chunk_id"] == citation["chunk_id"] and retrieval["citations"] == [citation]
    assert [s["kept"] for s in retrieval["support"]] == [True, True]
    prompt = json.loads(bot["prompt"])
    assert "[1] Shipping\nWe ship kettles to Norway" in prompt[-1]["content"]
    assert prompt[-1]["content"].endswith("Question: do you ship kettles to norway")
    generation = kb_app.llm.generations[-1]
    assert generation is not None and generation.max_tokens == kb_app.app.state.settings.kb.max_tokens

    page = await kb_app.http.get(f"/kb/passages/{citation['chunk_id']}")
    assert page.status_code == 200 and page.text.startswith("Shipping (shipping.md)\n\nWe ship kettles")
    missing = await kb_app.http.get("/kb/passages/99999")
    assert missing.status_code == 404 and "no passage 99999" in missing.json()["message"]


async def test_the_stream_shows_supported_sentences_and_the_message_event_carries_the_citations(kb_app: App) -> None:
    kb_app.llm.script.pieces = ["Kettles carry a five ", "year warranty. ", "They also come with a free mug."]
    response = await kb_app.http.post("/webhooks/rest/stream", json={"sender": "kai", "message": "kettle warranty"})
    events = sse(response.text)
    tokens = "".join(data["text"] for name, data in events if name == "token")
    (message,) = [data for name, data in events if name == "message"]
    assert tokens == message["text"] == "Kettles carry a five year warranty [1]."  # the invented mug never shown
    assert [c["title"] for c in message["citations"]] == ["Warranty"] and message["reason"] == "grounded"


async def test_an_answer_the_passages_do_not_support_is_declined(kb_app: App) -> None:
    kb_app.llm.script.pieces = ["Yes, ", "delivery by drone is free on Sundays."]
    reply = await kb_app.say("una", "do you ship kettles to norway")
    settings = kb_app.app.state.settings
    assert reply == settings.kb.abstain_reply
    _, bot = kb_app.turn("una")
    assert (bot["reason"], bot["answered_by"]) == ("unsupported", "base")
    retrieval = json.loads(bot["retrieval"])
    assert retrieval["citations"] == [] and retrieval["support"][0]["kept"] is False


async def test_a_question_the_documents_know_nothing_about_is_declined_without_the_llm(kb_app: App) -> None:
    reply = await kb_app.say("wim", "who won the world cup")
    assert reply == kb_app.app.state.settings.kb.abstain_reply and kb_app.llm.calls == []
    _, bot = kb_app.turn("wim")
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "no_evidence", "kb")
    assert json.loads(bot["retrieval"])["evidence"] is False


async def test_small_talk_the_documents_do_not_answer_goes_to_the_llm_not_the_abstain_reply(kb_app: App) -> None:
    reply = await kb_app.say("sam", "how are you")
    assert reply == "I am fine, thanks!"
    _, bot = kb_app.turn("sam")
    assert (bot["reason"], bot["answered_by"]) == ("llm_intent", "base")
    assert json.loads(bot["retrieval"])["evidence"] is False  # asked (a follow-up may read as small talk), no answer


async def test_an_unsure_message_that_reads_as_small_talk_goes_to_the_llm_not_the_documents(kb_app: App) -> None:
    """Out of scope to the NLU, but the small-talk intents hold 0.4 of its ranking (kb.smalltalk_share 0.3):
    the LLM answers in the persona; the abstain reply is for open questions."""
    reply = await kb_app.say("fay", "you are fired")
    assert reply == "I am fine, thanks!"
    _, bot = kb_app.turn("fay")
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "small_talk", "base")


async def test_small_talk_the_documents_answer_is_answered_from_them(kb_app: App) -> None:
    """A message the NLU takes for small talk (the fake NLU: chitchat) that the documents answer: answered, cited."""
    kb_app.llm.script.pieces = ["Kettles carry a five year warranty."]
    reply = await kb_app.say("kim", "what warranty do kettles carry")
    assert reply == "Kettles carry a five year warranty [1]."
    _, bot = kb_app.turn("kim")
    assert (bot["reason"], json.loads(bot["retrieval"])["evidence"]) == ("grounded", True)


async def test_a_follow_up_retrieves_with_the_earlier_question(kb_app: App) -> None:
    kb_app.llm.script.pieces = ["We ship to Sweden in four days."]
    await kb_app.say("eva", "do you ship kettles to norway")
    reply = await kb_app.say("eva", "and to sweden")
    assert reply == "We ship to Sweden in four days [1]."
    _, bot = kb_app.turn("eva")
    assert json.loads(bot["retrieval"])["query"] == "do you ship kettles to norway and to sweden"


async def test_a_failing_knowledge_base_leaves_the_question_to_the_llm(kb_app: App) -> None:
    reply = await kb_app.say("fay", KB_DOWN)
    assert reply == "I am fine, thanks!"
    _, bot = kb_app.turn("fay")
    assert bot["reason"] == "low_confidence" or bot["route"] == "llm"
    assert "retrieval: RuntimeError('the fake embedder failed')" in bot["error"]


async def test_without_the_nlu_a_message_without_evidence_goes_to_the_llm(kb_app: App) -> None:
    """With the NLU down a message may be small talk: no evidence means the LLM answers, not the abstain reply."""
    reply = await kb_app.say("nia", NLU_DOWN)
    assert reply == "I am fine, thanks!"
    user, bot = kb_app.turn("nia")
    assert (user["reason"], bot["answered_by"]) == ("nlu_unavailable", "base")
    assert json.loads(bot["retrieval"])["evidence"] is False


async def test_quoting_answers_with_the_passage_sentences_closest_to_the_question(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``kb.answer: extract`` (the default): no LLM; the top passage's best sentence, cited, in the SSE message."""
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with app_with_kb(tmp_path, max_sentences=1) as app:
        assert app.app.state.settings.kb.answer == "extract"
        response = await app.http.post("/webhooks/rest/stream", json={"sender": "liv", "message": "ship to sweden"})
        events = sse(response.text)
        (message,) = [data for name, data in events if name == "message"]
        assert message["text"] == "We ship to Sweden in four days [1]." and message["reason"] == "quoted"
        assert [c["title"] for c in message["citations"]] == ["Shipping"] and app.llm.calls == []
        _, bot = app.turn("liv")
        assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "quoted", "kb")
        retrieval = json.loads(bot["retrieval"])
        assert retrieval["citations"] == message["citations"] and retrieval["answerability"] >= 0.3
        top = retrieval["passages"][0]
        assert top["title"] == "Shipping" and top["best_sentence"] > top["dense"]  # the sentence is closer
        # the widget shows the sources again after a reload
        await app.http.post("/webhooks/web/stream", json={"sender": "widget-liv-000001", "message": "ship to sweden"})
        history = (await app.http.get("/webhooks/web/history", params={"sender": "widget-liv-000001"})).json()
        assert [c["title"] for c in history[-1]["citations"]] == ["Shipping"] and history[0]["citations"] == []
        # nothing in the documents: still declined, still without the LLM
        assert await app.say("liv", "who won the world cup") == app.app.state.settings.kb.abstain_reply


async def test_hybrid_quotes_the_passage_when_the_llm_answer_is_unsupported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with app_with_kb(tmp_path, answer="hybrid", max_sentences=1) as app:
        app.llm.script.pieces = ["Yes, ", "delivery by drone is free on Sundays."]
        reply = await app.say("uma", "kettle warranty")
        assert reply == "Kettles carry a five year warranty [1]."
        _, bot = app.turn("uma")
        assert (bot["reason"], bot["answered_by"]) == ("quoted", "base")
        assert json.loads(bot["retrieval"])["citations"][0]["title"] == "Warranty"
