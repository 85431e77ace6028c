"""Rich responses through the app (in-process, the contracts' fakes): buttons and images reach REST in Rasa's
shape and SSE whole, a button's payload is taken without the NLU and fills slots, the response is stored with
the reply so the widget's history and out-of-band deliveries keep it, and channel variations are chosen."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from assistant.config import DEMO_BOT_DIR
from assistant.store import outbox
from tests.unit.apps import App, settings_for, start

DOMAIN = {
    "version": "3.1",
    "responses": {
        "utter_greet": [
            {"text": "Hi! What can I do?", "buttons": [
                {"title": "Track order 42", "payload": '/order_status{"order_id": "42"}'},
                {"title": "Say bye", "payload": "/goodbye"}]},
        ],
        "utter_goodbye": [
            {"text": "Bye from the web", "channel": "web"},
            {"text": "Bye!\n\nSee you.", "image": "https://example.com/wave.png"},
        ],
    },
}  # fmt: skip


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    bot = tmp_path / "bot"
    shutil.copytree(DEMO_BOT_DIR, bot, ignore=shutil.ignore_patterns("models", "kb"))
    (bot / "domain.yml").write_text(yaml.safe_dump(DOMAIN))
    async with start(settings_for(tmp_path, bot_dir=bot)) as app:
        yield app


async def test_buttons_and_images_reach_rest_in_rasas_shape(app: App) -> None:
    greet = (await app.http.post("/webhooks/rest/webhook", json={"sender": "ana", "message": "hello"})).json()
    assert greet == [{"recipient_id": "ana", "text": "Hi! What can I do?", "buttons": [
        {"title": "Track order 42", "payload": '/order_status{"order_id": "42"}'},
        {"title": "Say bye", "payload": "/goodbye"}]}]  # fmt: skip
    parses = len(app.nlu.endpoints)
    bye = (await app.http.post("/webhooks/rest/webhook", json={"sender": "ana", "message": "/goodbye"})).json()
    assert len(app.nlu.endpoints) == parses  # a payload is not sent to the NLU
    assert bye == [
        {"recipient_id": "ana", "text": "Bye!"}, {"recipient_id": "ana", "text": "See you."},
        {"recipient_id": "ana", "image": "https://example.com/wave.png"},
    ]  # fmt: skip
    user, bot = app.turn("ana")
    assert (user["intent"], user["confidence"], user["nlu_model"], user["route"]) == (
        "goodbye",
        1.0,
        "payload",
        "intent",
    )
    assert json.loads(bot["metadata"]) == {"response": {"image": "https://example.com/wave.png"}}


async def test_a_payload_fills_slots_and_the_action_uses_them(app: App) -> None:
    await app.http.post("/webhooks/rest/webhook", json={"sender": "bo", "message": '/order_status{"order_id": "42"}'})
    user, bot = app.turn("bo")
    assert json.loads(user["entities"]) == [{"entity": "order_id", "value": "42"}]
    assert bot["answered_by"] == "action_order_status" and "42" in bot["text"]


async def test_the_widget_gets_buttons_live_and_after_a_reload(app: App) -> None:
    sender = "w" * 20
    async with app.http.stream("POST", "/webhooks/web/stream", json={"sender": sender, "message": "hello"}) as r:
        events = [json.loads(line[6:]) for line in [x async for x in r.aiter_lines()] if line.startswith("data: ")]
    message = next(e for e in events if "message_id" in e)
    assert message["rich"]["buttons"][1] == {"title": "Say bye", "payload": "/goodbye"}
    history = (await app.http.get("/webhooks/web/history", params={"sender": sender})).json()
    assert history[-1]["rich"]["buttons"][0]["title"] == "Track order 42" and history[0]["rich"] is None
    async with app.http.stream("POST", "/webhooks/web/stream", json={"sender": sender, "message": "/goodbye"}) as r:
        text = "".join([x async for x in r.aiter_lines()])
    assert "Bye from the web" in text  # the web channel's own variation


async def test_out_of_band_deliveries_keep_the_response(store_url: str) -> None:
    from assistant.contracts import Reason, RichResponse, Route
    from assistant.store import ReplyRecord, Store, Understanding

    store = Store(store_url)
    try:
        turn = await store.begin_turn("callback", "svc", "hello", None)
        rich = RichResponse(buttons=[{"title": "Yes", "payload": "/affirm"}], image="https://x/i.png")
        record = ReplyRecord("Sure?", Route.INTENT, Reason.CONFIDENT, rich=rich)
        await store.finish_turn(turn, Understanding(Route.INTENT, Reason.CONFIDENT), record, None, "callback")
        pending = await store.transaction(lambda conn: outbox.claim(conn, 60))
    finally:
        await store.aclose()
    assert [p.reply.rich for p in pending] == [rich]


async def test_slack_and_telegram_button_clicks_are_the_users_messages(app: App) -> None:
    from urllib.parse import urlencode

    from tests.unit.apps import TELEGRAM_SECRET, slack_headers, wait_for_reply

    click = {
        "type": "block_actions", "trigger_id": "t1", "user": {"id": "U7"}, "channel": {"id": "C7"},
        "team": {"id": "T1"}, "container": {"message_ts": "5.0", "thread_ts": "4.0"},
        "actions": [{"action_id": "button-1", "value": "/goodbye", "action_ts": "6.0"}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(click)}).encode()
    headers = {**slack_headers(body), "Content-Type": "application/x-www-form-urlencoded"}
    assert (await app.http.post("/webhooks/slack/webhook", content=body, headers=headers)).status_code == 200
    again = await app.http.post("/webhooks/slack/webhook", content=body, headers=headers)  # Slack's retry
    assert again.json() == {"ok": True, "duplicate": True}
    bot = await wait_for_reply(app, "C7:U7")
    user, _ = app.turn("C7:U7")
    assert (user["text"], user["nlu_model"], bot["text"]) == ("/goodbye", "payload", "Bye!\n\nSee you.")
    assert json.loads(user["metadata"])["slack"]["thread_ts"] == "4.0"

    update = {"update_id": 900, "callback_query": {
        "id": "q1", "data": "/goodbye", "chat_instance": "c",
        "from": {"id": 42, "is_bot": False, "first_name": "Ana"},
        "message": {"message_id": 5, "date": 0, "chat": {"id": 42, "type": "private"}, "text": "Hi!"}}}  # fmt: skip
    response = await app.http.post(
        "/webhooks/telegram/webhook", json=update, headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    )
    assert response.status_code == 200, response.text
    await wait_for_reply(app, "42")
    assert app.turn("42")[0]["text"] == "/goodbye"


def test_slack_blocks_and_telegram_keyboards_render_a_response() -> None:
    from assistant.contracts import Outgoing, RichResponse
    from plugins.channels.slack import _blocks
    from plugins.channels.telegram import inline_keyboard

    rich = RichResponse(buttons=[{"title": "Hours", "payload": "/opening_hours"}], image="https://x/i.png")
    reply = Outgoing("k", "slack", "C1:U1", "Pick <one>", 2, 1, {}, 1, {}, [], rich)
    blocks = _blocks(reply)
    assert blocks == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Pick &lt;one&gt;"}},
        {"type": "image", "image_url": "https://x/i.png", "alt_text": "image"},
        {"type": "actions", "elements": [{"type": "button", "action_id": "button-0", "value": "/opening_hours",
                                          "text": {"type": "plain_text", "text": "Hours"}}]},
    ]  # fmt: skip
    keyboard = inline_keyboard([*rich.buttons, {"title": "Too long", "payload": "/x" + "y" * 80}])
    assert keyboard is not None
    assert [[(b.text, b.callback_data) for b in row] for row in keyboard.inline_keyboard] == [
        [("Hours", "/opening_hours")]
    ]


def test_images_go_to_each_platform_as_it_can_take_them() -> None:
    """Slack and Telegram fetch http(s) images themselves; a data: URL is refused by Slack's image block (left
    out), uploaded to Telegram when it is a photo type, and left out there when it is not (SVG)."""
    import base64

    from telegram import InputFile

    from assistant.contracts import Outgoing, RichResponse
    from plugins.channels.out_of_band import data_image
    from plugins.channels.slack import _blocks
    from plugins.channels.telegram import _photo

    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 8
    png_url = "data:image/png;base64," + base64.b64encode(png).decode()
    svg_url = "data:image/svg+xml;base64," + base64.b64encode(b"<svg/>").decode()
    assert data_image(png_url) == ("image/png", png)
    assert data_image("data:image/svg+xml,%3Csvg%2F%3E") == ("image/svg+xml", b"<svg/>")
    assert data_image("data:image/png;base64,not base64!") is None and data_image("https://x/i.png") is None
    assert _photo("https://x/i.png") == "https://x/i.png"
    uploaded = _photo(png_url)
    assert isinstance(uploaded, InputFile) and uploaded.filename == "image.png"
    assert _photo(svg_url) is None and _photo(None) is None

    reply = Outgoing("k", "slack", "C1:U1", "Our stores", 2, 1, {}, 1, {}, [], RichResponse(image=svg_url))
    assert _blocks(reply) is None  # nothing but text left: posted as text
