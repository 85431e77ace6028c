"""Slack channel (Events API): ``POST /webhooks/slack/webhook`` is the app's Request URL.

* Every request's signature is checked first (v0 HMAC-SHA256 of ``v0:timestamp:body`` with the signing
  secret, constant-time, at most 5 minutes old, by slack-sdk's ``SignatureVerifier``): a forged or stale
  request gets 401 and nothing else happens.
* ``url_verification`` is answered with its challenge.
* Direct messages (``message`` events in ``im`` channels) and ``app_mention`` events are stored and
  acknowledged at once (Slack waits 3 seconds); the turn runs in the background and the reply is posted
  in the same thread with ``chat.postMessage`` from the outbox (retried until Slack takes it).
* Slack's retries carry the same ``event_id``: it is stored with the message, so a retry is acknowledged
  and not answered again. Messages from bots (this one included) and edits are ignored.
* A response's buttons are an ``actions`` block and its image an ``image`` block. With the same URL as the
  app's Interactivity Request URL, a click (``block_actions``, form-encoded ``payload``) is the user's message:
  the button's payload (``/intent{...}``), answered in the thread it was clicked in.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from pydantic import AliasChoices, BaseModel, Field, SecretStr
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from assistant.config import Settings
from assistant.contracts import DeliveryFailed, IncomingMessage, Outgoing, Turns
from plugins.channels.options import channel_options
from plugins.channels.out_of_band import (
    PLATFORM_REFUSALS,
    accept_and_answer_later,
    retry_after_s,
    source_name,
    web_image,
)

log = logging.getLogger(__name__)
MENTION = re.compile(r"<@[A-Z0-9]+(\|[^>]*)?>")
# chat.postMessage errors that no retry can fix
PERMANENT_ERRORS = {
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "missing_scope",
    "msg_too_long",
    "no_text",
}


class SlackOptions(BaseModel):
    # Rasa's credentials.yml names them slack_token and slack_signing_secret: read too
    bot_token: SecretStr = Field(
        description="xoxb-... (chat:write)", validation_alias=AliasChoices("bot_token", "slack_token")
    )
    signing_secret: SecretStr = Field(
        description="from the app's Basic Information page",
        validation_alias=AliasChoices("signing_secret", "slack_signing_secret"),
    )
    api_url: str = Field("https://slack.com/api/", description="Slack Web API base URL (tests point it elsewhere)")


class SlackChannel:
    name = "slack"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, SlackOptions)
        self.verifier = SignatureVerifier(self.options.signing_secret.get_secret_value())
        self.client = AsyncWebClient(token=self.options.bot_token.get_secret_value(), base_url=self.options.api_url)
        self.max_chars = settings.max_message_chars
        self.settings = settings

    def _signed(self, body: bytes, request: Request) -> bool:
        try:
            return self.verifier.is_valid_request(body, dict(request.headers))
        except (ValueError, TypeError):  # a timestamp that is not a number, a signature that is not ASCII
            return False

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/slack", tags=["slack"])

        @router.post("/webhook", responses=PLATFORM_REFUSALS)
        async def events(request: Request) -> dict[str, Any]:
            body = await request.body()
            if not self._signed(body, request):
                raise HTTPException(401, "invalid or expired Slack signature")
            if body.startswith(b"payload="):  # interactivity: a button was clicked
                message = self._click(body)
                if message is not None and await accept_and_answer_later(turns, message) is None:
                    return {"ok": True, "duplicate": True}
                return {"ok": True}
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise HTTPException(400, f"the body is not JSON: {exc}") from exc
            if not isinstance(payload, dict):
                raise HTTPException(400, "the body is not a Slack event (a JSON object)")
            if payload.get("type") == "url_verification":
                return {"challenge": payload.get("challenge")}
            if payload.get("type") != "event_callback":
                return {"ok": True, "ignored": payload.get("type")}
            message = self._message(payload)
            if message is None:
                return {"ok": True, "ignored": "not a message for the bot"}
            if await accept_and_answer_later(turns, message) is None:
                return {"ok": True, "duplicate": True}
            return {"ok": True}

        return router

    def _click(self, body: bytes) -> IncomingMessage | None:
        """A ``block_actions`` click on one of our buttons: its value (the payload) as the user's message."""
        try:
            payload = json.loads(parse_qs(body.decode())["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"not a Slack interaction payload: {exc}") from exc
        if not isinstance(payload, dict) or payload.get("type") != "block_actions":
            return None
        actions = [a for a in payload.get("actions") or [] if isinstance(a, dict) and a.get("value")]
        user, channel = payload.get("user") or {}, payload.get("channel") or {}
        if not actions or not user.get("id") or not channel.get("id"):
            return None
        container = payload.get("container") or {}
        where = {
            "channel": channel["id"],
            "thread_ts": container.get("thread_ts") or container.get("message_ts"),
            "user": user["id"],
            "team": (payload.get("team") or {}).get("id"),
        }
        action = actions[0]
        key = f"slack:action:{action.get('action_ts') or payload.get('trigger_id')}:{action.get('action_id')}"
        text = str(action["value"])[: self.max_chars]
        return IncomingMessage(self.name, f"{channel['id']}:{user['id']}", text, {"slack": where}, key)

    def _message(self, payload: dict[str, Any]) -> IncomingMessage | None:
        """The user message in an event, or None for events the bot does not answer."""
        event = payload.get("event") or {}
        bot_users = {a.get("user_id") for a in payload.get("authorizations") or [] if a.get("is_bot")}
        if event.get("bot_id") or event.get("subtype") or not event.get("user") or event["user"] in bot_users:
            return None  # bots (ourselves included), edits, joins, ...
        direct = event.get("type") == "message" and event.get("channel_type") == "im"
        if not (direct or event.get("type") == "app_mention"):
            return None
        text = MENTION.sub("", event.get("text") or "").strip()
        if not text:
            return None
        where: dict[str, Any] = {
            "channel": event.get("channel"),
            "thread_ts": event.get("thread_ts") or event.get("ts"),
            "user": event["user"],
            "team": payload.get("team_id"),
            "event_id": payload.get("event_id"),
        }
        if len(text) > self.max_chars:  # Slack allows 40,000 characters; the pipeline takes max_message_chars
            where["truncated_from"] = len(text)
            text = text[: self.max_chars]
        sender = f"{event.get('channel')}:{event['user']}"
        external_id = f"slack:{payload.get('event_id')}" if payload.get("event_id") else None
        return IncomingMessage(self.name, sender, text, {"slack": where}, external_id)

    async def deliver(self, reply: Outgoing) -> None:
        where = reply.metadata.get("slack") or {}
        try:
            await self.client.chat_postMessage(
                channel=where["channel"],
                thread_ts=where.get("thread_ts"),
                text=escape(reply.text) or " ",  # Slack wants some text (notifications) even with blocks
                blocks=_blocks(reply),
                metadata={"event_type": "assistant_reply", "event_payload": {"idempotency_key": reply.key}},
            )
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            retry_after = exc.response.headers.get("Retry-After") if exc.response is not None else None
            raise DeliveryFailed(
                f"chat.postMessage: {error or exc}",
                retry_after=retry_after_s(retry_after),
                permanent=error in PERMANENT_ERRORS,
            ) from exc

    async def aclose(self) -> None:
        session = getattr(self.client, "session", None)
        if session is not None:
            await session.close()


def escape(text: str) -> str:
    """Slack's control characters escaped (its formatting guide): a reply, which may repeat what a user steered
    the LLM to write, cannot ping ``<!channel>``, mention ``<@U123>`` or make links of its own."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _blocks(reply: Outgoing) -> list[dict[str, Any]] | None:
    """A reply with more than text: its text, then the response's image and buttons, then a context block that
    names its sources (links for URLs). None for plain text (``text`` alone is posted). An image is shown only
    from an http(s) URL, which Slack fetches."""
    rich = reply.rich
    image = rich.image if rich and web_image(rich.image) else None  # Slack fetches it: a data: URL is refused
    if not reply.citations and not (rich and (rich.buttons or image)):
        return None
    blocks: list[dict[str, Any]] = []
    if reply.text.strip():
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": escape(reply.text)}})
    if image:
        blocks.append({"type": "image", "image_url": image, "alt_text": "image"})
    if rich and rich.buttons:
        elements = [
            {"type": "button", "action_id": f"button-{i}", "value": str(b.get("payload") or b.get("title"))[:2000],
             "text": {"type": "plain_text", "text": str(b.get("title") or b.get("payload"))[:75]}}
            for i, b in enumerate(rich.buttons[:25])
        ]  # fmt: skip
        blocks.append({"type": "actions", "elements": elements})
    if reply.citations:
        blocks.append(_sources(reply))
    return blocks


def _sources(reply: Outgoing) -> dict[str, Any]:
    sources = []
    for c in reply.citations:
        name = source_name(c)
        title = escape(c.title)
        link = name.startswith("http") and not set("<>|") & set(name)
        sources.append(f"[{c.n}] <{name}|{title}>" if link else f"[{c.n}] {title} ({escape(name)})")
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": "Sources: " + " · ".join(sources)}]}
