"""The admin API (wiring/admin_api.py): its token, feedback, labels and reviews."""

from __future__ import annotations

from tests.unit.apps import (
    ADMIN,
    App,
)


async def test_admin_api_needs_its_token_and_checks_messages(running: App) -> None:
    await running.say("ian", "how are you")
    user, bot = running.turn("ian")
    assert (await running.http.get("/api/models")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        await running.http.post(f"/api/messages/{bot['id']}/feedback", json={"rating": "up"}, headers=wrong)
    ).status_code == 401
    given = await running.http.post(
        f"/api/messages/{bot['id']}/feedback", json={"rating": "down", "correction": "Great, thanks!"}, headers=ADMIN
    )
    assert given.status_code == 201
    on_user = await running.http.post(f"/api/messages/{user['id']}/feedback", json={"rating": "up"}, headers=ADMIN)
    assert on_user.status_code == 409 and "user message" in on_user.text
    missing = await running.http.post("/api/messages/999999/feedback", json={"rating": "up"}, headers=ADMIN)
    assert missing.status_code == 404
    label = await running.http.post(
        f"/api/messages/{user['id']}/label", json={"intent": "chitchat", "entities": []}, headers=ADMIN
    )
    assert label.status_code == 201 and label.json()["text"] == "how are you"
    bad_name = await running.http.post(f"/api/messages/{user['id']}/label", json={"intent": "no spaces"}, headers=ADMIN)
    assert bad_name.status_code == 422
    assert (await running.http.get("/api/models", headers=ADMIN)).json() == []
