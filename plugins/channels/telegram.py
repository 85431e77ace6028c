"""Telegram channel (Bot API webhook): ``POST /webhooks/telegram/webhook``.

* The ``X-Telegram-Bot-Api-Secret-Token`` header must equal ``secret_token`` (constant-time): otherwise
  401, nothing processed. ``assistant telegram set-webhook --url <public URL>`` registers URL + secret.
* Text messages are stored with their ``update_id``, so an update Telegram sends again is not answered
  twice. The turn runs in the background, with the "typing..." action shown while it does.
* Replies are sent from the outbox with ``sendMessage`` (retried, honouring Telegram's ``retry_after``);
  a reply longer than 4,096 characters goes out as several messages, and a retry resumes at the first
  part not yet sent.

python-telegram-bot provides the types and calls; ``api_url`` points it at another Bot API server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.constants import ChatAction, MessageLimit
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError

from assistant.config import Settings
from assistant.contracts import DeliveryFailed, IncomingMessage, Outgoing, Turns
from plugins.channels.options import channel_options
from plugins.channels.out_of_band import (
    PHOTO_TYPES,
    PLATFORM_REFUSALS,
    accept_and_answer_later,
    data_image,
    sources_text,
    web_image,
)

log = logging.getLogger(__name__)
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TYPING_EVERY_S = 4.0  # Telegram shows the action for 5 seconds
WEBHOOK_PATH = "/webhooks/telegram/webhook"


class TelegramOptions(BaseModel):
    token: SecretStr = Field(  # Rasa's credentials.yml: access_token
        description="the bot token from @BotFather", validation_alias=AliasChoices("token", "access_token")
    )
    secret_token: SecretStr = Field(description="sent by Telegram with every update (1-256 of A-Z a-z 0-9 _ -)")
    api_url: str = Field("https://api.telegram.org/bot", description="Bot API base URL (the token is appended)")

    @field_validator("secret_token")
    @classmethod
    def _telegram_accepts_it(cls, value: SecretStr) -> SecretStr:
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", value.get_secret_value()):
            raise ValueError("use 1-256 characters of A-Z, a-z, 0-9, _ and -")
        return value


def split_text(text: str, limit: int = MessageLimit.MAX_TEXT_LENGTH) -> list[str]:
    """Pieces of at most ``limit`` characters, cut at a paragraph, line or word break when there is one."""
    parts = []
    while len(text) > limit:
        window = text[:limit]
        for separator in ("\n\n", "\n", " "):
            cut = window.rfind(separator)
            if cut > limit // 2:
                break
        else:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip()
    return [*parts, text] if text or not parts else parts


CALLBACK_DATA_BYTES = 64  # Telegram's limit on a button's callback_data


def inline_keyboard(buttons: list[dict[str, Any]]) -> InlineKeyboardMarkup | None:
    """A response's buttons as an inline keyboard, one per row; a tap sends the payload back to us. A payload
    longer than Telegram allows is left out (with a warning), not cut: a cut payload would mean something else."""
    rows = []
    for button in buttons:
        payload = str(button.get("payload") or button.get("title") or "")
        if not payload or len(payload.encode()) > CALLBACK_DATA_BYTES:
            log.warning("button %r left out: its payload is longer than Telegram's 64 bytes", button.get("title"))
            continue
        rows.append([InlineKeyboardButton(str(button.get("title") or payload), callback_data=payload)])
    return InlineKeyboardMarkup(rows) if rows else None


def _photo(image: str | None) -> str | InputFile | None:
    """What sendPhoto takes for a response's image: its URL (Telegram fetches it), or a ``data:`` photo uploaded;
    None for what Telegram does not show as a photo (an SVG, say), which is left out rather than failing the
    reply."""
    if web_image(image):
        return image
    decoded = data_image(image)
    if decoded is None or decoded[0] not in PHOTO_TYPES:
        if image:
            log.info("image left out: Telegram shows http(s) URLs and PNG/JPEG/GIF/WebP data as photos")
        return None
    media, raw = decoded
    return InputFile(raw, filename=f"image.{media.split('/')[1]}")


class TelegramChannel:
    name = "telegram"

    def __init__(self, settings: Settings) -> None:
        self.options = channel_options(settings, self.name, TelegramOptions)
        self.bot = Bot(self.options.token.get_secret_value(), base_url=self.options.api_url)
        self.max_chars = settings.max_message_chars
        self.settings = settings
        self._acks: set[asyncio.Future[None]] = set()

    def router(self, turns: Turns) -> APIRouter:
        router = APIRouter(prefix="/webhooks/telegram", tags=["telegram"])

        @router.post("/webhook", responses=PLATFORM_REFUSALS)
        async def webhook(request: Request) -> dict[str, Any]:
            given = request.headers.get(SECRET_HEADER, "")
            if not secrets.compare_digest(given.encode(), self.options.secret_token.get_secret_value().encode()):
                raise HTTPException(401, f"missing or wrong {SECRET_HEADER}")
            try:
                data = json.loads(await request.body())
                if not isinstance(data, dict):
                    raise TypeError("an update is a JSON object")
                update = Update.de_json(data, self.bot)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:
                raise HTTPException(400, f"not a Telegram update: {exc}") from exc
            message = self._message(update)
            if message is None:
                return {"ok": True, "ignored": True}
            chat_id = update.effective_chat.id if update.effective_chat else 0
            if await accept_and_answer_later(turns, message, lambda: self._typing(chat_id)) is None:
                return {"ok": True, "duplicate": True}
            return {"ok": True}

        return router

    def _message(self, update: Update) -> IncomingMessage | None:
        if update.callback_query is not None:
            return self._button(update)
        msg = update.message
        if msg is None or not msg.text or msg.from_user is None or msg.from_user.is_bot:
            return None  # edits, channel posts, stickers, other bots
        chat = msg.chat
        sender = str(chat.id) if chat.type == "private" else f"{chat.id}:{msg.from_user.id}"
        where = {"chat_id": chat.id, "message_id": msg.message_id, "user_id": msg.from_user.id}
        text = msg.text[: self.max_chars]
        return IncomingMessage(self.name, sender, text, {"telegram": where}, f"telegram:{update.update_id}")

    def _button(self, update: Update) -> IncomingMessage | None:
        """A tap on one of our inline keyboard buttons: its payload is the user's message (as in Rasa)."""
        query = update.callback_query
        assert query is not None
        message = query.message
        if not query.data or message is None or query.from_user is None:
            return None
        chat = message.chat
        sender = str(chat.id) if chat.type == "private" else f"{chat.id}:{query.from_user.id}"
        where = {"chat_id": chat.id, "message_id": message.message_id, "user_id": query.from_user.id}
        self._acknowledge(query.id)
        return IncomingMessage(self.name, sender, query.data, {"telegram": where}, f"telegram:{update.update_id}")

    def _acknowledge(self, query_id: str) -> None:
        """Stop the button's spinner (best effort: the answer does not depend on it)."""

        async def answer() -> None:
            with contextlib.suppress(TelegramError):
                await self.bot.answer_callback_query(query_id)

        task = asyncio.ensure_future(answer())
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    @contextlib.asynccontextmanager
    async def _typing(self, chat_id: int) -> AsyncIterator[None]:
        """Show "typing..." in the chat until the reply is ready."""

        async def keep_typing() -> None:
            while True:
                with contextlib.suppress(TelegramError):
                    await self.bot.send_chat_action(chat_id, ChatAction.TYPING)
                await asyncio.sleep(TYPING_EVERY_S)

        task = asyncio.create_task(keep_typing())
        try:
            yield
        finally:
            task.cancel()

    async def deliver(self, reply: Outgoing) -> None:
        chat_id = (reply.metadata.get("telegram") or {})["chat_id"]
        text = f"{reply.text}\n\n{sources_text(reply.citations)}" if reply.citations else reply.text
        parts = split_text(text) if text.strip() else []
        sent = int(reply.state.get("parts_sent", 0))
        keyboard = inline_keyboard(reply.rich.buttons) if reply.rich else None
        try:
            for n, part in enumerate(parts[sent:], start=sent):
                last = n == len(parts) - 1
                await self.bot.send_message(chat_id, part, reply_markup=keyboard if last else None)
                sent += 1
            photo = _photo(reply.rich.image if reply.rich else None)
            if photo is not None and not reply.state.get("photo_sent"):
                await self.bot.send_photo(chat_id, photo)
                reply.state["photo_sent"] = True
        except RetryAfter as exc:
            wait = exc.retry_after
            seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
            raise DeliveryFailed(f"sendMessage: {exc}", retry_after=seconds) from exc
        except (BadRequest, Forbidden, InvalidToken) as exc:  # chat gone, bot blocked, bad token
            raise DeliveryFailed(f"sendMessage: {exc}", permanent=True) from exc
        except TelegramError as exc:
            raise DeliveryFailed(f"sendMessage: {exc}") from exc
        finally:
            reply.state["parts_sent"] = sent

    async def set_webhook(self, public_url: str) -> str:
        """Tell Telegram where to send updates, and the secret to send with them."""
        url = public_url.rstrip("/") + WEBHOOK_PATH
        await self.bot.set_webhook(
            url,
            secret_token=self.options.secret_token.get_secret_value(),
            allowed_updates=["message", "callback_query"],
        )
        return url

    async def aclose(self) -> None:
        with contextlib.suppress(Exception):
            await self.bot.shutdown()
