"""The REST channel (plugins/channels/rest.py): Rasa's REST webhook and the SSE stream, and what they refuse."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.unit.apps import (
    WEBHOOK,
    App,
    count,
)


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"sender": "x", "message": "   "}, 422, "message must not be empty"),
        ({"sender": "", "message": "hi"}, 422, "sender"),
        ({"message": "hi"}, 422, "sender: Field required"),
        ({"sender": "x", "message": "a" * 5000}, 413, "the limit is 4096"),
    ],
)
async def test_rest_refuses_bad_messages_with_a_sentence(
    running: App, body: dict[str, Any], status: int, says: str
) -> None:
    response = await running.http.post("/webhooks/rest/webhook", json=body)
    assert response.status_code == status
    assert says in response.text
    assert running.rows("SELECT count(*) AS n FROM messages")[0]["n"] == 0


async def test_invalid_json_is_a_422_with_a_sentence(running: App) -> None:
    response = await running.http.post(
        "/webhooks/rest/webhook", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "not valid JSON" in response.json()["message"]


BAD_BODIES = {
    "lone surrogate": (b'{"sender": "s", "message": "hi \\ud800 there"}', 422, "unicode"),
    "NUL character": (b'{"sender": "s", "message": "hi \\u0000"}', 422, "NUL"),
    "invalid UTF-8": (b'{"sender": "s", "message": "hi \xff\xfe"}', 422, "not valid JSON"),
    "not JSON": (b"sender=s&message=hi", 422, "JSON"),
    "deep JSON": (
        b'{"sender": "s", "message": "hi", "metadata": ' + b"[" * 20000 + b"]" * 20000 + b"}",
        422,
        "not valid JSON",
    ),
    "deep metadata": (b'{"sender": "s", "message": "hi", "metadata": {"a": [[[[[[[[[1]]]]]]]]]}}', 422, "nested"),
    "big metadata": (
        json.dumps({"sender": "s", "message": "hi", "metadata": {"x": "y" * 2000}}).encode(),
        413,
        "metadata",
    ),
    "huge number": (b'{"sender": "s", "message": "hi", "metadata": {"n": 1e999}}', 422, "number"),
    "long sender": (json.dumps({"sender": "s" * 300, "message": "hi"}).encode(), 422, "sender"),
    "surrogate in sender": (b'{"sender": "\\udfff", "message": "hi"}', 422, "unicode"),
    "blank": (b'{"sender": "s", "message": "   "}', 422, "empty"),
}


@pytest.mark.parametrize("case", BAD_BODIES)
async def test_bad_input_gets_a_4xx_with_a_sentence_and_nothing_is_stored(app: App, case: str) -> None:
    body, status, words = BAD_BODIES[case]
    for path in (WEBHOOK, "/webhooks/rest/stream"):
        response = await app.http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == status, (case, response.text)
        message = response.json()["message"]
        assert message and words in message, (case, message)
    assert count(app) == 0


async def test_a_body_over_the_limit_is_refused_before_it_is_read(app: App) -> None:
    body = json.dumps({"sender": "s", "message": "x" * 70000}).encode()
    for path in (WEBHOOK, "/webhooks/slack/webhook", "/webhooks/telegram/webhook", "/webhooks/callback/webhook"):
        response = await app.http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 413, (path, response.text)

    async def chunked() -> Any:  # no Content-Length: counted as it arrives
        for _ in range(20):
            yield b" " * 4096

    response = await app.http.post(WEBHOOK, content=chunked(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and count(app) == 0


async def test_a_json_body_is_read_whatever_its_content_type(app: App) -> None:
    body = json.dumps({"sender": "curl", "message": "hello"})
    for content_type in ("application/x-www-form-urlencoded", "text/plain", None):
        headers = {"Content-Type": content_type} if content_type else {}
        response = await app.http.post(WEBHOOK, content=body, headers=headers)
        assert response.status_code == 200 and response.json()[0]["recipient_id"] == "curl"


async def test_rasa_stream_mode_answers_one_message_per_line(app: App) -> None:
    """Rasa's console client (`rasa shell` in stream mode) posts to the webhook with ``?stream=true&token=``
    and reads one JSON message per line."""
    response = await app.http.post(f"{WEBHOOK}?stream=true&token=x", json={"sender": "console", "message": "hello"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    lines = [json.loads(line) for line in response.text.splitlines() if line]
    assert lines and all(m["recipient_id"] == "console" for m in lines) and "text" in lines[0]
    plain = await app.http.post(WEBHOOK, json={"sender": "console", "message": "hello"})
    assert plain.json() == lines
