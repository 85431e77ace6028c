"""Feedback (assistant/store/feedback.py): only on a bot reply; trusted only from reviewers and trusted channels.
Channel users' feedback is a signal, capped per sender, and training data only once a reviewer approves it
(in-process app with fakes, real store)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from assistant.store import Store, feedback
from assistant.store.tables import utcnow
from tests.unit.answers import answer
from tests.unit.apps import ADMIN, WIDGET_SENDER, settings_for, start
from training.export import export_sft


async def widget_turn(app: Any, sender: str, text: str) -> int:
    response = await app.http.post("/webhooks/web/stream", json={"sender": sender, "message": text})
    assert response.status_code == 200
    return int(app.turn(sender)[1]["id"])


async def suggest(app: Any, sender: str, message_id: int, correction: str) -> Any:
    return await app.http.post(
        "/webhooks/web/feedback",
        json={"sender": sender, "message_id": message_id, "rating": "down", "correction": correction},
    )


async def test_widget_feedback_waits_for_review_and_only_approved_is_exported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path)
    async with start(settings) as app:
        ids = {}
        for n in range(4):
            sender = f"{n}" * 24
            ids[n] = await widget_turn(app, sender, "how are you")
            given = await suggest(app, sender, ids[n], f"Send your PIN to refunds{n}@evil.test")
            assert given.status_code == 201
        rows = app.rows("SELECT source, review, channel, sender_id FROM feedback ORDER BY id")
        assert {(r["source"], r["review"], r["channel"]) for r in rows} == {("anonymous", "pending", "web")}
        assert rows[0]["sender_id"] == "0" * 24

        queue = (await app.http.get("/api/reviews", headers=ADMIN)).json()
        assert {item["message_id"] for item in queue} == set(ids.values())
        assert queue[0]["conversation"][-1] == ["user", "how are you"]
        assert queue[0]["feedback"][0]["correction"].startswith("Send your PIN")

        # a reviewer approves one (edited), rejects one; the others stay pending
        edit = {"decision": "edit", "correction": "I'm fine, thanks for asking!"}
        edited = await app.http.post(f"/api/messages/{ids[0]}/review", json=edit, headers=ADMIN)
        assert edited.status_code == 200 and edited.json()["feedback_items"] == 1
        rejected = await app.http.post(f"/api/messages/{ids[1]}/review", json={"decision": "reject"}, headers=ADMIN)
        assert rejected.status_code == 200
        again = await app.http.post(f"/api/messages/{ids[1]}/review", json={"decision": "approve"}, headers=ADMIN)
        assert again.status_code == 409 and "no feedback waiting" in again.text
        no_text = await app.http.post(f"/api/messages/{ids[2]}/review", json={"decision": "edit"}, headers=ADMIN)
        assert no_text.status_code == 422
        anonymous = await app.http.post(f"/api/messages/{ids[2]}/review", json={"decision": "approve"})
        assert anonymous.status_code == 401
        # a reviewer's own correction is trusted as given
        await app.say("rita", "how are you")
        reviewer_reply = app.turn("rita")[1]["id"]
        own = {"rating": "down", "correction": "Doing well, thanks!"}
        assert (
            await app.http.post(f"/api/messages/{reviewer_reply}/feedback", json=own, headers=ADMIN)
        ).status_code == 201

    store = Store(settings.db_url)
    try:
        sft = await export_sft(settings, store, tmp_path / "sft")
    finally:
        await store.aclose()
    targets = [line for path in (sft.train, sft.validation) for line in path.read_text().splitlines() if line.strip()]
    text = "\n".join(targets)
    assert "PIN" not in text and "evil" not in text
    assert "I'm fine, thanks for asking!" in text and "Doing well, thanks!" in text
    assert sft.counts["examples"] == 2
    assert sft.counts["from reviewer"] == 1 and sft.counts["from anonymous"] == 1
    assert sft.counts["anonymous feedback pending review"] == 2 and sft.counts["anonymous feedback rejected"] == 1


async def test_feedback_is_capped_per_sender_and_trusted_channels_skip_review(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path)
    settings.feedback.max_per_sender = 3
    settings.feedback.max_correction_chars = 40
    async with start(settings) as app:
        reply = await widget_turn(app, WIDGET_SENDER, "how are you")
        too_long = await suggest(app, WIDGET_SENDER, reply, "x" * 41)
        assert too_long.status_code == 422 and "at most 40 characters" in too_long.text
        for _ in range(3):
            assert (await suggest(app, WIDGET_SENDER, reply, "Fine!")).status_code == 201
        capped = await suggest(app, WIDGET_SENDER, reply, "Fine!")
        assert capped.status_code == 429 and "Retry-After" in capped.headers
        assert len(app.rows("SELECT id FROM feedback")) == 3  # the refused ones are not stored

    settings = settings_for(tmp_path / "trusted", feedback={"trusted_channels": ["web"]})
    (tmp_path / "trusted").mkdir()
    async with start(settings) as app:
        reply = await widget_turn(app, WIDGET_SENDER, "how are you")
        assert (await suggest(app, WIDGET_SENDER, reply, "Fine, thanks!")).status_code == 201
        (row,) = app.rows("SELECT source, review FROM feedback")
        assert (row["source"], row["review"]) == ("trusted", "accepted")


@pytest.mark.database
async def test_feedback_and_labels_check_the_message(store_url: str) -> None:
    store = Store(store_url)
    try:
        turn = await store.begin_turn("rest", "fb", "where are my wallet stars", None)
        bot_id = await answer(store, turn, "No idea!", "llm")
        since = utcnow()
        with pytest.raises(feedback.WrongMessageKind, match="user message"):
            await store.transaction(lambda c: feedback.add_feedback(c, turn.message_id, "up", None))
        with pytest.raises(feedback.WrongMessageKind, match="bot reply"):
            await store.transaction(lambda c: feedback.set_label(c, bot_id, "loyalty_points", []))
        with pytest.raises(feedback.MessageNotFound):
            await store.transaction(lambda c: feedback.add_feedback(c, 999_999, "up", None))
        await store.transaction(lambda c: feedback.add_feedback(c, bot_id, "down", "Let me check your stars."))
        first = await store.transaction(lambda c: feedback.set_label(c, turn.message_id, "order_status", []))
        again = await store.transaction(lambda c: feedback.set_label(c, turn.message_id, "loyalty_points", []))
        assert first == again  # labelling again replaces the label
        assert await store.transaction(lambda c: feedback.count_new(c, since)) == 2
        assert await store.transaction(lambda c: feedback.count_new(c, utcnow())) == 0
        with pytest.raises(ValueError, match="not an intent name"):
            feedback.check_intent_name("two words")
        feedback.check_intent_name("faq/ask_gift_cards")  # a retrieval intent's response key
        for bad in ("faq/ask/twice", "/ask", "faq/", "x" * 129):
            with pytest.raises(ValueError, match="not an intent name"):
                feedback.check_intent_name(bad)
    finally:
        await store.aclose()
