"""Annotations answer at once (assistant/knowledge/annotation_matcher.py, assistant/store/annotations.py), through
the in-process app (fake NLU, LLM and embedder; real store, router and pipeline): a reply a reviewer approved or
wrote answers the next message close to its question before the documents and the LLM, with its hits counted;
an anonymous suggestion does not until a reviewer approves it; a message far from every question is untouched."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistant.store import annotations
from tests.unit.apps import ADMIN, WIDGET_SENDER, App, app_with_kb

ANSWER = "Our parrot mascot is called Pip, and he says hello!"


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with app_with_kb(tmp_path, annotation_threshold=0.6) as running:
        yield running


async def bot_reply(app: App, sender: str, text: str) -> int:
    await app.say(sender, text)
    return int(app.turn(sender)[1]["id"])


async def test_a_reviewers_correction_answers_a_close_message_at_once(app: App) -> None:
    wrong = await bot_reply(app, "rev", "what is the name of your parrot mascot")
    given = await app.http.post(f"/api/messages/{wrong}/feedback", json={"rating": "down", "correction": ANSWER},
                                headers=ADMIN)  # fmt: skip
    assert given.status_code == 201, given.text
    llm_calls = len(app.llm.calls)
    assert await app.say("ann", "your parrot mascot, what is its name?") == ANSWER
    assert len(app.llm.calls) == llm_calls  # no generation
    _, bot = app.turn("ann")
    (row,) = app.rows("SELECT id, question, hits, source FROM annotations")
    assert (bot["route"], bot["reason"], bot["answered_by"]) == ("llm", "annotated", f"annotation-{row['id']}")
    assert (row["question"], row["hits"], row["source"]) == ("what is the name of your parrot mascot", 1, "review")
    # far from the question: the usual path (the documents, then the LLM)
    assert await app.say("bob", "who won the world cup") == app.app.state.settings.kb.abstain_reply


async def test_an_anonymous_suggestion_answers_nothing_until_a_reviewer_approves_it(app: App) -> None:
    sender = WIDGET_SENDER
    await app.http.post("/webhooks/web/stream", json={"sender": sender, "message": "what is your parrot called"})
    bot_id = int(app.turn(sender)[1]["id"])
    suggested = await app.http.post(
        "/webhooks/web/feedback", json={"sender": sender, "message_id": bot_id, "rating": "down", "correction": ANSWER}
    )
    assert suggested.status_code == 201
    assert app.rows("SELECT id FROM annotations") == []
    assert await app.say("cat", "what is your parrot called?") != ANSWER
    approved = await app.http.post(f"/api/messages/{bot_id}/review", json={"decision": "approve"}, headers=ADMIN)
    assert approved.status_code == 200, approved.text
    assert await app.say("dan", "what is your parrot called?") == ANSWER


async def test_a_disabled_or_removed_annotation_answers_nothing(app: App) -> None:
    state = app.app.state
    number = await state.store.transaction(
        lambda c: annotations.add(c, "is the parrot real", "He is a drawing.", "import")
    )
    assert await app.say("eve", "is the parrot real") == "He is a drawing."
    await state.store.transaction(lambda c: annotations.set_enabled(c, number, False))
    assert await app.say("fox", "is the parrot real") != "He is a drawing."
    await state.store.transaction(lambda c: annotations.remove(c, number))
    assert app.rows("SELECT id FROM annotations") == []
