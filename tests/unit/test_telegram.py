"""The Telegram channel (plugins/channels/telegram.py): its secret, and each update taken once."""

from __future__ import annotations

import time

from tests.unit.apps import (
    TELEGRAM_SECRET,
    App,
    wait_for_reply,
)


async def test_telegram_checks_its_secret_and_takes_each_update_once(running: App) -> None:
    update = {
        "update_id": 77,
        "message": {
            "message_id": 1, "date": int(time.time()), "text": "hello",
            "from": {"id": 5, "is_bot": False, "first_name": "Ana"}, "chat": {"id": 5, "type": "private"},
        },
    }  # fmt: skip
    url = "/webhooks/telegram/webhook"
    assert (
        await running.http.post(url, json=update, headers={"X-Telegram-Bot-Api-Secret-Token": "no"})
    ).status_code == 401
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    assert (await running.http.post(url, json=update, headers=headers)).json() == {"ok": True}
    assert (await running.http.post(url, json=update, headers=headers)).json() == {"ok": True, "duplicate": True}
    assert (await running.http.post(url, content=b"[]", headers=headers)).status_code == 400
    assert (await wait_for_reply(running, "5"))["answered_by"] == "utter_greet"
