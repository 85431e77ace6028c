"""The Telegram channel on the real stack, with a loopback stand-in for the Bot API: the secret token,
duplicate updates, the typing action, long replies split (and resumed after a failure), set-webhook, and buttons
as an inline keyboard whose taps are answered."""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from typing import Any

import httpx

from assistant.config import Settings
from assistant.contracts import Outgoing
from plugins.channels.telegram import TelegramChannel, split_text
from tests.conftest import LLM_TALK, TELEGRAM_SECRET, TELEGRAM_TOKEN, Stack
from tests.standins import TelegramAPI


def update(text: str, chat_id: int, update_id: int | None = None) -> dict[str, Any]:
    """An update as the Bot API documents it (a private chat's text message)."""
    user = {"id": chat_id, "is_bot": False, "first_name": "Ana", "language_code": "en"}
    return {
        "update_id": update_id or random.randint(10**8, 10**9),
        "message": {
            "message_id": random.randint(1, 10**6),
            "from": user,
            "chat": {"id": chat_id, "first_name": "Ana", "type": "private"},
            "date": int(time.time()),
            "text": text,
        },
    }


def post(stack: Stack, payload: dict[str, Any], secret: str | None = TELEGRAM_SECRET) -> httpx.Response:
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret is not None else {}
    return stack.http.post(f"{stack.url}/webhooks/telegram/webhook", json=payload, headers=headers)


def test_wrong_or_missing_secret_gets_401_and_nothing_is_stored(stack: Stack, telegram_api: TelegramAPI) -> None:
    chat_id = random.randint(10**6, 10**7)
    payload = update("a message from a forger", chat_id)
    assert post(stack, payload, secret="wrong-secret").status_code == 401
    assert post(stack, payload, secret=None).status_code == 401
    time.sleep(2)
    assert stack.rows("SELECT id FROM messages WHERE text = 'a message from a forger'") == []
    assert telegram_api.sent_to(chat_id) == []


def test_update_is_answered_once_with_typing_shown(stack: Stack, telegram_api: TelegramAPI) -> None:
    chat_id = random.randint(10**6, 10**7)
    payload = update(LLM_TALK[0], chat_id)
    assert post(stack, payload).status_code == 200
    telegram_api.wait_for(lambda: telegram_api.sent_to(chat_id), 60, "the reply in Telegram")
    assert post(stack, payload).json()["duplicate"]  # Telegram sends the same update again
    time.sleep(3)
    (text,) = telegram_api.sent_to(chat_id)
    row = stack.rows("SELECT * FROM messages WHERE external_id = ?", f"telegram:{payload['update_id']}")
    assert len(row) == 1 and row[0]["route"] == "llm"
    (bot,) = stack.rows("SELECT * FROM messages WHERE reply_to_id = ?", row[0]["id"])
    assert text == bot["text"]
    typing = [r.params() for r in telegram_api.calls("/sendChatAction") if int(r.params()["chat_id"]) == chat_id]
    assert typing and typing[0]["action"] == "typing"


def test_non_text_updates_are_ignored(stack: Stack) -> None:
    payload = update("x", 77)
    del payload["message"]["text"]
    payload["message"]["sticker"] = {
        "file_id": "f",
        "file_unique_id": "u",
        "width": 1,
        "height": 1,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }
    assert post(stack, payload).json()["ignored"]
    assert post(stack, {"update_id": 5, "edited_message": update("x", 77)["message"]}).json()["ignored"]
    assert post(stack, {"not": "an update"}).status_code == 400


def test_split_text_keeps_every_word_and_the_limit() -> None:
    text = " ".join(f"word{i}" for i in range(2000))
    parts = split_text(text)
    assert all(2048 < len(part) <= 4096 for part in parts[:-1]) and len(parts) == -(-len(text) // 4000)
    assert " ".join(parts).split() == text.split()
    assert split_text("x" * 9000) == ["x" * 4096, "x" * 4096, "x" * 808]
    assert split_text("short") == ["short"]


def test_long_reply_goes_out_in_parts_and_a_retry_resumes(telegram_api: TelegramAPI) -> None:
    settings = Settings(
        channel={
            "telegram": {"token": TELEGRAM_TOKEN, "secret_token": TELEGRAM_SECRET, "api_url": f"{telegram_api.url}/bot"}
        }
    )
    channel = TelegramChannel(settings)
    chat_id = random.randint(10**6, 10**7)
    text = "\n\n".join(f"Paragraph {i}. " + ("lorem ipsum " * 60).strip() for i in range(14))  # about 10,000 characters
    reply = Outgoing("key", "telegram", str(chat_id), text, 2, 1, {"telegram": {"chat_id": chat_id}}, 1, {})
    too_many = (
        429,
        {},
        {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 3",
            "parameters": {"retry_after": 3},
        },
    )

    async def attempts() -> list[Exception | None]:
        outcomes: list[Exception | None] = []
        try:
            for _ in range(2):
                try:
                    await channel.deliver(reply)
                    outcomes.append(None)
                except Exception as exc:
                    outcomes.append(exc)
        finally:
            await channel.aclose()
        return outcomes

    telegram_api.script = [None, too_many]  # the first part goes through, the second is refused
    first, second = asyncio.run(attempts())
    assert first is not None and getattr(first, "retry_after", None) == 3.0
    assert second is None
    sent = telegram_api.sent_to(chat_id)
    assert len(sent) == len(split_text(text)) >= 3, "each part sent exactly once, none twice after the retry"
    assert "\n\n".join(sent) == text


def test_set_webhook_registers_url_and_secret(stack: Stack, telegram_api: TelegramAPI) -> None:
    def set_webhook(url: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "wiring", "telegram", "set-webhook", "--url", url]
        return subprocess.run(command, env=stack.env, capture_output=True, text=True, timeout=60)

    result = set_webhook("https://bot.example.org/")
    assert result.returncode == 0, result.stderr
    (call,) = [r.params() for r in telegram_api.calls("/setWebhook")]
    assert call["url"] == "https://bot.example.org/webhooks/telegram/webhook"
    assert call["secret_token"] == TELEGRAM_SECRET
    bad = set_webhook("bot.example.org")
    assert bad.returncode == 1 and "--url must be an http(s) URL" in bad.stderr


def test_buttons_are_an_inline_keyboard_and_a_tap_is_answered(stack: Stack, telegram_api: TelegramAPI) -> None:
    """The demo's help response has buttons: sent as an inline keyboard (callback_data = the payload); a tap is
    a ``callback_query`` update, acknowledged (answerCallbackQuery) and answered as the payload, without the
    NLU."""
    chat_id = random.randint(10**6, 10**7)
    assert post(stack, update("what can you do", chat_id)).status_code == 200
    telegram_api.wait_for(lambda: telegram_api.sent_to(chat_id), 60, "the help reply in Telegram")
    (helped,) = [m for m in telegram_api.sent if int(m["chat_id"]) == chat_id]
    keyboard = helped["reply_markup"]["inline_keyboard"]
    assert [(b["text"], b["callback_data"]) for row in keyboard for b in row] == [
        ("Opening hours", "/opening_hours"), ("Payment methods", "/payment_methods"),
        ("Talk to a person", "/contact_human"),
    ]  # fmt: skip

    ana = {"id": chat_id, "is_bot": False, "first_name": "Ana"}
    bot_user = {"id": 4242, "is_bot": True, "first_name": "Assistant"}
    query_id = str(random.randint(10**15, 10**16))
    tap = {"update_id": random.randint(10**8, 10**9), "callback_query": {
        "id": query_id, "from": ana, "chat_instance": "-4711", "data": "/payment_methods",
        "message": {"message_id": 101, "from": bot_user, "date": int(time.time()),
                    "chat": {"id": chat_id, "type": "private", "first_name": "Ana"}, "text": "I can check..."},
    }}  # fmt: skip
    assert post(stack, tap).status_code == 200
    telegram_api.wait_for(lambda: len(telegram_api.sent_to(chat_id)) == 2, 60, "the answer to the tap")
    acknowledged = [r.params() for r in telegram_api.calls("/answerCallbackQuery")]
    assert any(str(p["callback_query_id"]) == query_id for p in acknowledged)
    (user,) = stack.rows("SELECT * FROM messages WHERE external_id = ?", f"telegram:{tap['update_id']}")
    assert (user["text"], user["intent"], user["nlu_model"]) == ("/payment_methods", "payment_methods", "payload")
    (bot,) = stack.rows("SELECT * FROM messages WHERE reply_to_id = ?", user["id"])
    assert telegram_api.sent_to(chat_id)[1] == bot["text"] and bot["answered_by"] == "utter_payment_methods"
