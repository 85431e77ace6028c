"""The admin API on the running app: feedback on bot replies, labels on user messages, the registry."""

from __future__ import annotations

from tests.conftest import LLM_TALK, Stack


def test_admin_api_needs_the_token(stack: Stack) -> None:
    message = stack.stream("admin-auth", "hello")
    for token in (None, "wrong-token"):
        response = stack.admin(f"/messages/{message['message_id']}/feedback", {"rating": "up"}, token=token)
        assert response.status_code == 401, response.text
        assert "token" in response.json()["message"]
    assert stack.http.get(f"{stack.url}/api/models").status_code == 401
    assert stack.rows("SELECT * FROM feedback WHERE message_id = ?", message["message_id"]) == []


def test_feedback_is_stored_on_bot_replies_only(stack: Stack) -> None:
    message = stack.stream("admin-feedback", LLM_TALK[0])
    bot_id, user_id = message["message_id"], message["user_message_id"]
    created = stack.admin(f"/messages/{bot_id}/feedback", {"rating": "down", "correction": "Cats rule. Meow."})
    assert created.status_code == 201, created.text
    assert created.json()["message_id"] == bot_id
    rows = stack.rows("SELECT rating, correction FROM feedback WHERE message_id = ?", bot_id)
    assert rows == [{"rating": "down", "correction": "Cats rule. Meow."}]
    # a reviewer's correction answers at once (an annotation): removed, so that it answers no other test's message
    stack.db.execute("DELETE FROM annotations WHERE answer = ?", "Cats rule. Meow.")

    wrong_kind = stack.admin(f"/messages/{user_id}/feedback", {"rating": "up"})
    assert wrong_kind.status_code == 409 and "user message" in wrong_kind.json()["message"]
    missing = stack.admin("/messages/987654321/feedback", {"rating": "up"})
    assert missing.status_code == 404 and "987654321" in missing.json()["message"]
    for body in ({}, {"rating": "meh"}, {"correction": "   "}):
        invalid = stack.admin(f"/messages/{bot_id}/feedback", body)
        assert invalid.status_code == 422 and invalid.json()["message"], body
    assert len(stack.rows("SELECT * FROM feedback WHERE message_id = ?", bot_id)) == 1


def test_labels_are_stored_on_user_messages_with_entity_offsets(stack: Stack) -> None:
    message = stack.stream("admin-label", "ship my order to Lisbon please")
    bot_id, user_id = message["message_id"], message["user_message_id"]
    created = stack.admin(
        f"/messages/{user_id}/label", {"intent": "update_address", "entities": [{"entity": "city", "value": "lisbon"}]}
    )
    assert created.status_code == 201, created.text
    assert created.json()["entities"] == [{"entity": "city", "value": "lisbon", "start": 17, "end": 23}]
    again = stack.admin(f"/messages/{user_id}/label", {"intent": "order_status"})
    assert again.status_code == 201 and again.json()["id"] == created.json()["id"]
    assert stack.rows("SELECT intent FROM labels WHERE message_id = ?", user_id) == [{"intent": "order_status"}]

    assert stack.admin(f"/messages/{bot_id}/label", {"intent": "greet"}).status_code == 409
    assert stack.admin("/messages/987654321/label", {"intent": "greet"}).status_code == 404
    bad_name = stack.admin(f"/messages/{user_id}/label", {"intent": "two words"})
    assert bad_name.status_code == 422 and "intent" in bad_name.json()["message"]
    not_there = stack.admin(
        f"/messages/{user_id}/label", {"intent": "greet", "entities": [{"entity": "city", "value": "Oslo"}]}
    )
    assert not_there.status_code == 409 and "does not occur" in not_there.json()["message"]
    assert stack.rows("SELECT intent FROM labels WHERE message_id = ?", user_id) == [{"intent": "order_status"}]


def test_models_lists_the_registry(stack: Stack) -> None:
    response = stack.http.get(f"{stack.url}/api/models", headers={"Authorization": "Bearer test-admin-token"})
    assert response.status_code == 200
    nlu = [m for m in response.json() if m["kind"] == "nlu"]
    assert nlu and nlu[0]["version"] == "nlu-0001" and nlu[0]["path"].endswith(".tar.gz")
