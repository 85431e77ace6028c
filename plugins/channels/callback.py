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

The inbound webhook authenticates its caller (``inbound_auth``): by default the request is signed like our
replies (the same two headers, HMAC keyed with ``secret``, at most 5 minutes old); ``token`` takes
``Authorization: Bearer <inbound_token>`` instead; ``none`` (anyone may post) must be chosen explicitly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import asdict
from typing import Annotated, Any, Literal

import httpx
from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field, SecretStr, model_validator

from assistant.config import Settings
from assistant.contracts import DeliveryFailed, IncomingMessage, Outgoing, Turns
from plugins.channels.options import channel_options
from plugins.channels.out_of_band import accept_and_answer_later, retry_after_s
from plugins.channels.rest import JSONWhateverItsType, RestMessage

SIGNATURE_HEADER = "X-Assistant-Signature"
TIMESTAMP_HEADER = "X-Assistant-Timestamp"


class CallbackOptions(BaseModel):
    url: str = Field(description="where replies are POSTed")
    secret: SecretStr = Field(description="HMAC key for the signature header")
    timeout_s: float = 10.0
    inbound_auth: Literal["signature", "token", "none"] = Field(
        "signature", description="how the inbound webhook authenticates its caller"
    )
    inbound_token: SecretStr | None = Field(None, description="inbound_auth: token: the bearer token callers send")

    @model_validator(mode="after")
    def _token_given(self) -> CallbackOptions:
        if self.inbound_auth == "token" and not (self.inbound_token and self.inbound_token.get_secret_value()):
            raise ValueError("inbound_auth is 'token' but inbound_token is not set")
        return self


MESSAGE_ID = r"^[A-Za-z0-9._:@/+=-]{1,200}$"


class CallbackMessage(RestMessage):
    message_id: Annotated[
        str | None, Field(pattern=MESSAGE_ID, description="your id (letters, digits, ._:@/+=-): a resend is ignored")
    ] = None


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value; receivers recompute it and compare in constant time."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """The timestamp and signature headers for ``body`` (our replies carry them; so must inbound requests)."""
    timestamp = str(int(time.time()))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


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
        self.settings = settings
        self.http = httpx.AsyncClient(timeout=self.options.timeout_s)

    async def _authenticate(self, request: Request) -> None:
        options = self.options
        if options.inbound_auth == "none":
            return
        if options.inbound_auth == "token":
            assert options.inbound_token is not None
            given = request.headers.get("authorization", "").removeprefix("Bearer ").encode("utf-8", "replace")
            if not hmac.compare_digest(given, options.inbound_token.get_secret_value().encode()):
                raise HTTPException(401, "missing or wrong bearer token (Authorization: Bearer <inbound_token>)")
            return
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        signature = request.headers.get(SIGNATURE_HEADER, "")
        if not (timestamp.isascii() and signature.isascii()) or not verify(
            options.secret.get_secret_value(), timestamp, await request.body(), signature
        ):
            raise HTTPException(
                401, f"missing, wrong or expired {SIGNATURE_HEADER} (HMAC-SHA256 of '<timestamp>.' + body, keyed "
                f"with the channel's secret; {TIMESTAMP_HEADER} within 5 minutes)"
            )  # fmt: skip

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/callback", tags=["callback"], route_class=JSONWhateverItsType)

        @router.get("/")
        async def alive() -> dict[str, str]:
            return {"status": "ok"}

        @router.post("/webhook", responses={
            401: {"description": "the caller is not authenticated"},
            413: {"description": "the body, the message or its metadata is too large"},
        })  # fmt: skip
        async def webhook(body: CallbackMessage, request: Request) -> dict[str, Any]:
            await self._authenticate(request)
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
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": reply.key,
            **signed_headers(self.options.secret.get_secret_value(), body),
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
