"""The socket.io channel with a real python-socketio client against the app served by uvicorn (the backends are
the contracts' fakes): Rasa's session handshake, persistent sessions across reconnects, replies in the shapes
Rasa's channel emits (quick replies for buttons, image attachments), streaming on request, JWT, bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import socketio
import uvicorn

from assistant.infra.services import free_port
from tests.unit.apps import App, settings_for, start

SECRET = "a-socketio-jwt-signing-key-for-tests"


class Served:
    def __init__(self, app: App, url: str) -> None:
        self.app, self.url = app, url

    async def client(self, token: str | None = None) -> tuple[socketio.AsyncClient, asyncio.Queue[tuple[str, Any]]]:
        client = socketio.AsyncClient(reconnection=False)
        received: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        for event in ("session_confirm", "bot_uttered", "bot_uttered_stream"):
            client.on(event, lambda data, event=event: received.put_nowait((event, data)))
        await client.connect(self.url, socketio_path="/socket.io", transports=["websocket"],
                             auth={"token": token} if token else None, wait_timeout=10)  # fmt: skip
        return client, received


async def until(received: asyncio.Queue[tuple[str, Any]], event: str, count: int = 1) -> list[Any]:
    found: list[Any] = []
    while len(found) < count:
        name, data = await asyncio.wait_for(received.get(), 10)
        if name == event:
            found.append(data)
    return found


@pytest.fixture
async def served(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> AsyncIterator[Served]:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    options = {"session_persistence": True, "stream_evt": "bot_uttered_stream", **getattr(request, "param", {})}
    settings = settings_for(tmp_path, channels=["rest", "socketio"], channel={"socketio": options})
    async with start(settings) as app:
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app.app, host="127.0.0.1", port=port, lifespan="off", log_level="warning")
        )
        task = asyncio.create_task(server.serve())
        while not server.started:  # noqa: ASYNC110 (uvicorn offers no event for it)
            await asyncio.sleep(0.01)
        try:
            yield Served(app, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            await task


async def test_session_handshake_and_a_turn_in_rasas_shapes(served: Served) -> None:
    client, received = await served.client()
    await client.emit("session_request", {"session_id": None})
    (session,) = await until(received, "session_confirm")
    assert isinstance(session, str) and len(session) == 32
    await client.emit("user_uttered", {"message": "hello", "session_id": session})
    (greeting,) = await until(received, "bot_uttered")
    assert greeting == {"text": "Hello! I'm Penny, Northwind's assistant. How can I help you today?"}
    await client.emit("user_uttered", {"message": "/help", "session_id": session})  # a payload: utter_help
    (help_,) = await until(received, "bot_uttered")
    assert help_["text"].startswith("I can check the status") and help_["quick_replies"][0] == {
        "content_type": "text", "title": "Opening hours", "payload": "/opening_hours"}  # fmt: skip
    await client.emit("user_uttered", {"message": "how are you", "session_id": session})  # the LLM, streamed
    pieces = await until(received, "bot_uttered_stream", 1)
    (whole,) = await until(received, "bot_uttered")
    assert pieces[0]["text"] and whole["text"] == "I am fine, thanks!"
    await client.disconnect()

    # a reload: a new socket with the same session continues the conversation
    again, received = await served.client()
    await again.emit("session_request", {"session_id": session})
    assert await until(received, "session_confirm") == [session]
    await again.emit("user_uttered", {"message": "hello", "session_id": session})
    await until(received, "bot_uttered")
    await again.disconnect()
    rows = served.app.rows("SELECT c.sender_id, count(*) AS n FROM messages m JOIN conversations c "
                           "ON c.id = m.conversation_id WHERE c.channel = 'socketio' GROUP BY c.sender_id")  # fmt: skip
    assert rows == [{"sender_id": session, "n": 8}]


async def test_bad_input_is_said_and_not_stored(served: Served) -> None:
    client, received = await served.client()
    await client.emit("user_uttered", {"message": "x" * 5000, "session_id": "s" * 20})
    (said,) = await until(received, "bot_uttered")
    assert said == {"text": "message is 5000 characters long; the limit is 4096"}
    await client.emit("user_uttered", {"message": "   ", "session_id": "s" * 20})  # rasa-webchat's empty init
    await client.emit("user_uttered", {"message": "hello"})  # no session id while sessions persist: ignored
    await asyncio.sleep(0.2)
    await client.disconnect()
    assert served.app.rows("SELECT count(*) AS n FROM messages")[0]["n"] == 0


@pytest.mark.parametrize("served", [{"jwt_key": SECRET}], indirect=True)
async def test_a_jwt_is_required_when_configured(served: Served) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await served.client()
    with pytest.raises(socketio.exceptions.ConnectionError):
        await served.client(jwt.encode({"user": "x"}, "another-key-entirely-wrong-and-long-enough", algorithm="HS256"))
    client, received = await served.client(jwt.encode({"user": "ana"}, SECRET, algorithm="HS256"))
    await client.emit("session_request", {"session_id": "jwt-session-0001"})
    await until(received, "session_confirm")
    await client.emit("user_uttered", {"message": "hello", "session_id": "jwt-session-0001"})
    assert (await until(received, "bot_uttered"))[0]["text"].startswith("Hello!")
    await client.disconnect()
