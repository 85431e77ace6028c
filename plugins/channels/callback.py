"""REST callback channel, compatible with Rasa's: ``POST /webhooks/callback/webhook`` takes
``{"sender", "message", "metadata"?, "message_id"?}``, stores the message and answers at once; the reply
is POSTed later to the integrator's ``url``:

    POST <url>
    Content-Type: application/json
    Idempotency-Key: <the same on every attempt for this reply>
    X-Assistant-Timestamp: <unix seconds>
    X-Assistant-Signature: sha256=<hex HMAC-SHA256 of "<timestamp>." + body, keyed with ``secret``>

    {"recipient_id": sender, "text": ..., "message_id": <reply id>, "in_reply_to": <message id>, ...}

Deliveries come from the outbox: retried with exponential backoff until the receiver answers 2xx, and
not lost across a restart. ``message_id`` in the request (optional) makes resending a message harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict
from typing import Annotated, Any

import httpx
from fastapi import APIRouter
from pydantic import BaseModel, Field, SecretStr

from assistant.config import Settings
from assistant.contracts import DeliveryFailed, IncomingMessage, Outgoing, Turns
from plugins.channels.options import channel_options
from plugins.channels.out_of_band import accept_and_answer_later, retry_after_s
from plugins.channels.rest import RestMessage, check_length

SIGNATURE_HEADER = "X-Assistant-Signature"
TIMESTAMP_HEADER = "X-Assistant-Timestamp"


class CallbackOptions(BaseModel):
    url: str = Field(description="where replies are POSTed")
    secret: SecretStr = Field(description="HMAC key for the signature header")
    timeout_s: float = 10.0


class CallbackMessage(RestMessage):
    message_id: Annotated[str | None, Field(max_length=200, description="your id: a resend is ignored")] = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value; receivers recompute it and compare in constant time."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, max_age_s: float = 300) -> bool:
    """For receivers: the signature matches and the timestamp is recent (replays are refused)."""
    try:
        fresh = abs(time.time() - int(timestamp)) <= max_age_s
    except ValueError:
        return False
    return fresh and hmac.compare_digest(sign(secret, timestamp, body), signature)


class CallbackChannel:
    name = "callback"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, CallbackOptions)
        self.max_chars = settings.max_message_chars
        self.http = httpx.AsyncClient(timeout=self.options.timeout_s)

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/callback", tags=["callback"])

        @router.get("/")
        async def alive() -> dict[str, str]:
            return {"status": "ok"}

        @router.post("/webhook")
        async def webhook(body: CallbackMessage) -> dict[str, Any]:
            check_length(body.message, self.max_chars)
            external_id = f"callback:{body.sender}:{body.message_id}" if body.message_id else None
            message = IncomingMessage(self.name, body.sender, body.message, body.metadata, external_id)
            accepted = await accept_and_answer_later(turns, message)
            if accepted is None:
                return {"status": "duplicate"}
            return {"status": "success", "message_id": accepted.message_id}

        return router

    async def deliver(self, reply: Outgoing) -> None:
        body = json.dumps(
            {
                "recipient_id": reply.sender,
                "text": reply.text,
                "message_id": reply.message_id,
                "in_reply_to": reply.reply_to,
                "metadata": reply.metadata,
                "citations": [asdict(c) for c in reply.citations],
            }
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": reply.key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(self.options.secret.get_secret_value(), timestamp, body),
        }
        try:
            response = await self.http.post(self.options.url, content=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryFailed(f"{self.options.url}: {exc!r}") from exc
        if not response.is_success:
            raise DeliveryFailed(
                f"{self.options.url} answered {response.status_code}",
                retry_after=retry_after_s(response.headers.get("Retry-After")),
            )

    async def aclose(self) -> None:
        await self.http.aclose()
