"""REST channel, compatible with Rasa's: ``POST /webhooks/rest/webhook`` with
``{"sender", "message", "metadata"?}`` answers ``[{"recipient_id", "text"}]``.

``POST /webhooks/rest/stream`` takes the same body and answers with Server-Sent Events:
``token`` events (``{"text": piece}``) while the LLM writes, then one ``message`` event with the whole
stored reply (``recipient_id``, ``text``, ``message_id``, ``route``, ``citations``, ...), then ``done``.

A reply answered from the knowledge base cites its sources: the webhook's list then has a second element,
``{"recipient_id", "custom": {"citations": [{"n", "chunk_id", "title", "source"}]}}`` — Rasa's form for custom
payloads, which clients that read only ``text`` skip.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field, field_validator

from assistant.config import Settings
from assistant.contracts import BotReply, IncomingMessage, Turns


class RestMessage(BaseModel):
    sender: Annotated[str, Field(min_length=1, max_length=255, description="the conversation's id")]
    message: str
    metadata: dict[str, Any] | None = None

    @field_validator("sender", mode="before")
    @classmethod
    def _sender_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("message")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("message must not be empty")
        return value


class BotMessage(BaseModel):
    recipient_id: str
    text: str | None = None
    custom: dict[str, Any] | None = Field(None, description="the reply's citations, when it has any")


def rasa_messages(recipient: str, reply: BotReply) -> list[dict[str, Any]]:
    """A reply in Rasa's REST output form: its text, then its citations as a custom payload (if any)."""
    messages: list[dict[str, Any]] = [{"recipient_id": recipient, "text": reply.text}]
    if reply.citations:
        messages.append({"recipient_id": recipient, "custom": {"citations": [asdict(c) for c in reply.citations]}})
    return messages


def _sse(event: str, data: dict[str, Any]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


def stream_turn(turns: Turns, message: IncomingMessage) -> StreamingResponse:
    """One turn as Server-Sent Events: ``token`` events while the LLM writes, the stored reply as one
    ``message`` event, then ``done`` (shared by the REST and web channels)."""

    async def events() -> AsyncIterator[bytes]:
        async for event in turns.run(message):
            if isinstance(event, BotReply):
                yield _sse("message", {"recipient_id": message.sender, **asdict(event)})
            else:
                yield _sse("token", {"text": event})
        yield _sse("done", {})

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


def check_length(text: str, max_chars: int) -> None:
    if len(text) > max_chars:
        raise HTTPException(status_code=413, detail=f"message is {len(text)} characters long; the limit is {max_chars}")


class RestChannel:
    name = "rest"

    def __init__(self, settings: Settings) -> None:
        self.max_chars = settings.max_message_chars

    def _accept(self, body: RestMessage) -> IncomingMessage:
        check_length(body.message, self.max_chars)
        return IncomingMessage(self.name, body.sender, body.message, body.metadata)

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/rest", tags=["rest"])

        @router.get("/")
        async def alive() -> dict[str, str]:
            return {"status": "ok"}

        @router.post("/webhook", response_model=list[BotMessage])
        async def webhook(body: RestMessage) -> JSONResponse:
            reply = await turns.respond(self._accept(body))
            # A Response passes through as is: no second validation of what we just built (hot path).
            return JSONResponse(rasa_messages(body.sender, reply))

        @router.post("/stream", response_class=StreamingResponse)
        async def stream(body: RestMessage) -> StreamingResponse:
            return stream_turn(turns, self._accept(body))

        return router
