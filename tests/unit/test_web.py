"""The web widget's channel (plugins/channels/web.py): its stream, history and feedback."""

from __future__ import annotations

from tests.unit.apps import (
    WIDGET_SENDER,
    App,
)


async def test_widget_history_and_feedback_only_for_its_own_conversation(running: App) -> None:
    response = await running.http.post("/webhooks/web/stream", json={"sender": WIDGET_SENDER, "message": "hello"})
    assert response.status_code == 200
    history = (await running.http.get("/webhooks/web/history", params={"sender": WIDGET_SENDER})).json()
    assert (history[0]["role"], history[0]["text"], history[1]["role"]) == ("user", "hello", "bot")
    bot_id = history[1]["id"]
    rated = await running.http.post(
        "/webhooks/web/feedback", json={"sender": WIDGET_SENDER, "message_id": bot_id, "rating": "up"}
    )
    assert rated.status_code == 201
    again = (await running.http.get("/webhooks/web/history", params={"sender": WIDGET_SENDER})).json()
    assert again[1]["rating"] == "up"
    other = await running.http.post(
        "/webhooks/web/feedback", json={"sender": "z" * 24, "message_id": bot_id, "rating": "down"}
    )
    assert other.status_code == 404
    empty = await running.http.post("/webhooks/web/feedback", json={"sender": WIDGET_SENDER, "message_id": bot_id})
    assert empty.status_code == 422 and "give a rating" in empty.text
    bad_sender = await running.http.get("/webhooks/web/history", params={"sender": "short"})
    assert bad_sender.status_code == 422


async def test_the_widget_history_reads_only_its_conversations_feedback(app: App) -> None:
    from sqlalchemy.dialects import sqlite

    from assistant.store import feedback

    query = feedback.history_query("web", "x" * 16, 50).compile(
        dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True}
    )
    plan = " | ".join(r["detail"] for r in app.rows(f"EXPLAIN QUERY PLAN {query}"))
    assert "SCAN feedback" not in plan and "feedback USING INDEX" in plan, plan
