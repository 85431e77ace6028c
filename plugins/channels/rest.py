"""REST channel, compatible with Rasa's: ``POST /webhooks/rest/webhook`` with
``{"sender", "message", "metadata"?}`` answers ``[{"recipient_id", "text"}]``; with ``?stream=true`` (what
Rasa's console client sends in stream mode) the same messages come one JSON object per line.

``POST /webhooks/rest/stream`` takes the same body and answers with Server-Sent Events:
``token`` events (``{"text": piece}``) while the LLM writes, then one ``message`` event with the whole
stored reply (``recipient_id``, ``text``, ``message_id``, ``route``, ``citations``, ...), then ``done``.

A reply answered from the knowledge base cites its sources: the webhook's list then has a second element,
``{"recipient_id", "custom": {"citations": [{"n", "chunk_id", "title", "source"}]}}`` — Rasa's form for custom
payloads, which clients that read only ``text`` skip.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field, WithJsonSchema, field_validator

from assistant.config import LimitsSettings, Settings
from assistant.contracts import BotReply, IncomingMessage, Overloaded, Turns
from assistant.turn.inputs import NOT_BLANK, blank


class JSONWhateverItsType(APIRoute):
    """Reads a JSON body whatever its Content-Type, as Rasa's REST channel does (``curl -d`` sends form
    encoding); a body that is not JSON is still a 422 with a sentence."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            headers = [(k, v) for k, v in request.scope["headers"] if k != b"content-type"]
            scope = {**request.scope, "headers": [*headers, (b"content-type", b"application/json")]}
            return await handler(Request(scope, request.receive))

        return route


class RestMessage(BaseModel):
    sender: Annotated[
        str,
        Field(min_length=1, max_length=255, description="the conversation's id (a number is taken, as Rasa does)"),
        WithJsonSchema({"anyOf": [{"type": "string", "minLength": 1, "maxLength": 255}, {"type": "integer"}]}),
    ]
    message: Annotated[
        str, Field(min_length=1, description="the user's text (not blank)", json_schema_extra={"pattern": NOT_BLANK})
    ]
    metadata: dict[str, Any] | None = Field(None, description="kept with the message (size and depth are limited)")

    @field_validator("sender", mode="before")
    @classmethod
    def _sender_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if blank(value):
            raise ValueError("message must not be empty")
        return value


class BotMessage(BaseModel):
    """One of Rasa's REST output messages."""

    recipient_id: str
    text: str | None = None
    buttons: list[dict[str, Any]] | None = Field(None, description="[{title, payload}]: send a payload back as text")
    image: str | None = None
    attachment: Any = None
    custom: dict[str, Any] | None = Field(None, description="a response's custom payload, or the reply's citations")


def rasa_messages(recipient: str, reply: BotReply) -> list[dict[str, Any]]:
    """A reply as Rasa's REST channel sends it (its ``send_response`` and ``CollectingOutputChannel``): the text
    with its buttons, or the text split at blank lines into messages; then the custom payload, the image and
    the attachment as messages of their own; then the citations, as a custom payload."""
    rich = reply.rich
    messages: list[dict[str, Any]] = []
    if rich and rich.buttons:
        messages.append({"recipient_id": recipient, "text": reply.text, "buttons": rich.buttons})
    elif reply.text.strip():
        messages += [{"recipient_id": recipient, "text": part} for part in reply.text.strip().split("\n\n")]
    if rich:
        messages += [
            {"recipient_id": recipient, key: value}
            for key, value in (("custom", rich.custom), ("image", rich.image), ("attachment", rich.attachment))
            if value
        ]
    if reply.citations:
        messages.append({"recipient_id": recipient, "custom": {"citations": [asdict(c) for c in reply.citations]}})
    return messages


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


class Streams:
    """Server-Sent Event streams a channel has open; past ``limits.max_streams`` a new one is refused (503)."""

    def __init__(self, limits: LimitsSettings) -> None:
        self.limits = limits
        self.open = 0

    def check(self) -> None:
        if self.open >= self.limits.max_streams:
            raise Overloaded(
                f"{self.open} replies are streaming; nothing was stored, please send the message again in "
                f"{self.limits.retry_after_s} seconds",
                self.limits.retry_after_s,
            )

    def turn(self, turns: Turns, message: IncomingMessage) -> StreamingResponse:
        """One turn as Server-Sent Events: ``token`` events while the LLM writes, the stored reply as one
        ``message`` event, then ``done`` (shared by the REST and web channels)."""

        async def events() -> AsyncIterator[bytes]:
            self.open += 1
            try:
                async for event in turns.run(message):
                    if isinstance(event, BotReply):
                        yield _sse("message", {"recipient_id": message.sender, **asdict(event)})
                    else:
                        yield _sse("token", {"text": event})
                yield _sse("done", {})
            finally:
                self.open -= 1

        headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)


def client_address(request: Request) -> str | None:
    """The caller's address (behind a proxy: uvicorn's ``--proxy-headers`` puts the forwarded one here)."""
    return request.client.host if request.client else None


async def admitted(turns: Turns, message: IncomingMessage, request: Request) -> IncomingMessage:
    """A synchronous turn's checks, before anything is stored: the message itself (4xx), then the backends'
    lines and the sender's and address's share (503/429, ``Retry-After``); the turn API makes all three."""
    await turns.admit(message, client_address(request))
    return message


REFUSALS: dict[int | str, dict[str, Any]] = {
    413: {"description": "the body, the message or its metadata is too large"},
    422: {"description": "the body is not a valid message (the reason is in `message`)"},
    429: {"description": "this sender or address sent too many messages; see Retry-After"},
    503: {"description": "the assistant is at capacity; nothing was stored; see Retry-After"},
}


LINES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {"schema": {"type": "string"}}},
          "description": "the messages; with `?stream=true` one JSON message per line"},
}  # fmt: skip


class RestChannel:
    name = "rest"

    def __init__(self, settings: Settings) -> None:
        self.streams = Streams(settings.limits)

    @staticmethod
    async def _lines(turns: Turns, message: IncomingMessage) -> AsyncIterator[bytes]:
        reply = await turns.respond(message)
        for item in rasa_messages(message.sender, reply):
            yield (json.dumps(item) + "\n").encode()

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/rest", tags=["rest"], route_class=JSONWhateverItsType)

        async def accept(body: RestMessage, request: Request) -> IncomingMessage:
            message = IncomingMessage(self.name, body.sender, body.message, body.metadata)
            return await admitted(turns, message, request)

        @router.get("/")
        async def alive() -> dict[str, str]:
            return {"status": "ok"}

        @router.post("/webhook", response_model=list[BotMessage], responses={**REFUSALS, **LINES})
        async def webhook(body: RestMessage, request: Request, stream: bool = False) -> Response:
            """Rasa's REST webhook; ``?stream=true`` (Rasa's console client in stream mode) answers with one
            JSON message per line instead of the list."""
            message = await accept(body, request)
            if stream:
                return StreamingResponse(self._lines(turns, message), media_type="text/event-stream")
            reply = await turns.respond(message)
            # A Response passes through as is: no second validation of what we just built (hot path).
            return JSONResponse(rasa_messages(body.sender, reply))

        @router.post("/stream", response_class=StreamingResponse, responses=REFUSALS)
        async def stream(body: RestMessage, request: Request) -> StreamingResponse:
            self.streams.check()
            return self.streams.turn(turns, await accept(body, request))

        return router
