"""A Rasa user's bot, end to end: Rasa's moodbot with what a Rasa user adds to it (tests/rasa_projects.py: a
retrieval intent, a rule answered by a rasa-sdk custom action, buttons, a slot-conditioned response) goes
through `assistant init --from-rasa`, then `assistant up --bot` trains it with the real Rasa, serves its
actions/ on the real rasa-sdk action server and talks over REST, socket.io and the widget (headless Chromium).
The LLM is the session stack's vLLM, so no second model server starts."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import socketio
from playwright.sync_api import Browser, expect

from assistant.infra.services import free_port
from tests.conftest import Stack
from tests.database import last_turn
from tests.rasa_projects import moodbot_plus

CHEER_UP = "https://i.imgur.com/nGF1K8f.jpg"  # the moodbot's image


class Moodbot:
    def __init__(self, url: str, db: Path, init_output: str) -> None:
        self.url, self.db, self.init_output = url, db, init_output
        self.http = httpx.Client(timeout=60)

    def rest(self, sender: str, message: str) -> list[dict[str, Any]]:
        response = self.http.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message})
        assert response.status_code == 200, response.text
        return response.json()

    def turn(self, sender: str) -> tuple[dict[str, Any], dict[str, Any]]:
        import sqlite3

        def rows(sql: str, *params: Any) -> list[dict[str, Any]]:
            with sqlite3.connect(self.db) as conn:
                conn.row_factory = sqlite3.Row
                return [dict(r) for r in conn.execute(sql, params)]

        return last_turn(rows, sender)


@pytest.fixture(scope="module")
def moodbot(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moodbot]:
    where = tmp_path_factory.mktemp("moodbot")
    project, bot, data = moodbot_plus(where / "project"), where / "bot", where / "data"
    init = subprocess.run(
        [sys.executable, "-m", "wiring", "init", "--from-rasa", str(project), "--out", str(bot)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip
    assert init.returncode == 0, init.stdout + init.stderr
    port = free_port()
    env = {
        **{k: v for k, v in stack.env.items() if not k.startswith(("ASSISTANT_CHANNEL__", "ASSISTANT_CORS"))},
        "ASSISTANT_DATA_DIR": str(data),
        "ASSISTANT_DATABASE_URL": f"sqlite+aiosqlite:///{data / 'assistant.db'}",
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_RASA__URL": f"http://127.0.0.1:{free_port()}",
        "ASSISTANT_ACTION_SERVER__URL": f"http://127.0.0.1:{free_port()}/webhook",
        "ASSISTANT_VLLM__MANAGED": "false",  # the session stack's vLLM
        "ASSISTANT_CHANNELS": '["rest", "web", "socketio"]',
        "ASSISTANT_CHANNEL__SOCKETIO__SESSION_PERSISTENCE": "true",
    }
    log_path = where / "up.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wiring", "up", "--bot", str(bot)],
            env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    try:
        stack.wait_until(
            lambda: "assistant is up" in log_path.read_text() or process.poll() is not None, 900, "the moodbot's `up`"
        )
        assert process.poll() is None, log_path.read_text()[-4000:]
        yield Moodbot(f"http://127.0.0.1:{port}", data / "assistant.db", " ".join(init.stdout.split()))
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()


def test_init_reports_what_carries_over(moodbot: Moodbot) -> None:
    said = moodbot.init_output
    assert "intent mood_great answers with action_remember_mood" in said
    assert "intent mood_unhappy answers with utter_cheer_up" in said
    assert "serves actions/ with rasa-sdk" in said


def test_rest_rich_responses_retrieval_intent_and_an_action_that_sets_a_slot(moodbot: Moodbot) -> None:
    """Over Rasa's REST channel, in Rasa's message shapes."""
    sender = "rasa-user"
    greeting = moodbot.rest(sender, "hello there")
    assert greeting == [{
        "recipient_id": sender, "text": "Hey! How are you?",
        "buttons": [{"title": "great", "payload": "/mood_great"}, {"title": "super sad", "payload": "/mood_unhappy"}],
    }]  # fmt: skip
    # a button's payload: taken as said (no NLU), answered with the image response
    assert moodbot.rest(sender, "/mood_unhappy") == [
        {"recipient_id": sender, "text": "Here is something to cheer you up:"},
        {"recipient_id": sender, "image": CHEER_UP},
    ]
    # the retrieval intent, classified by the real Rasa model's ResponseSelector
    assert moodbot.rest(sender, "what's your name?") == [{"recipient_id": sender, "text": "I'm Moody, the mood bot."}]
    user, bot = moodbot.turn(sender)
    assert (user["intent"], bot["answered_by"]) == ("chitchat/ask_name", "utter_chitchat/ask_name")
    # the rule's custom action, on the real rasa-sdk action server: it answers and sets `mood` ...
    assert moodbot.rest(sender, "I am feeling great") == [{"recipient_id": sender, "text": "Great, carry on!"}]
    user, bot = moodbot.turn(sender)
    assert (user["intent"], bot["answered_by"], bot["error"]) == ("mood_great", "action_remember_mood", None)
    # ... which the next response's condition and placeholder use
    assert moodbot.rest(sender, "goodbye") == [{"recipient_id": sender, "text": "Bye, and stay great!"}]
    assert moodbot.rest("someone-else", "goodbye") == [{"recipient_id": "someone-else", "text": "Bye"}]


def test_socketio_quick_replies_and_image(moodbot: Moodbot) -> None:
    """Over the socket.io channel, with a real python-socketio client, in the shapes Rasa's channel emits."""

    async def talk() -> list[Any]:
        client = socketio.AsyncClient(reconnection=False)
        received: asyncio.Queue[Any] = asyncio.Queue()
        client.on("bot_uttered", received.put_nowait)
        await client.connect(moodbot.url, socketio_path="/socket.io", transports=["websocket"], wait_timeout=30)
        try:
            await client.emit("session_request", {"session_id": "moodbot-socket-session"})
            said = []
            for text, count in (("hi", 1), ("/mood_unhappy", 2)):
                await client.emit("user_uttered", {"message": text, "session_id": "moodbot-socket-session"})
                said += [await asyncio.wait_for(received.get(), 60) for _ in range(count)]
            return said
        finally:
            await client.disconnect()

    greeting, cheer, image = asyncio.run(talk())
    assert greeting["text"] == "Hey! How are you?"
    assert [(q["title"], q["payload"]) for q in greeting["quick_replies"]] == [
        ("great", "/mood_great"), ("super sad", "/mood_unhappy")
    ]  # fmt: skip
    assert cheer == {"text": "Here is something to cheer you up:"}
    assert image == {"attachment": {"type": "image", "payload": {"src": CHEER_UP}}}


def test_widget_draws_buttons_and_the_image(moodbot: Moodbot, browser: Browser) -> None:
    """Our web widget in headless Chromium: the greeting's buttons are drawn, a click sends the payload and the
    image response arrives."""
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(f"{moodbot.url}/chat")
        page.get_by_label("Your message").fill("hello")
        page.keyboard.press("Enter")
        replies = page.locator(".aw-bot[data-message-id]")
        expect(replies).to_have_count(1)
        expect(replies.nth(0).locator(".aw-choice")).to_have_count(2)
        replies.nth(0).locator(".aw-choice").get_by_text("super sad").click()
        expect(replies).to_have_count(2)
        expect(replies.nth(1)).to_contain_text("Here is something to cheer you up:")
        expect(replies.nth(1).locator("img")).to_have_attribute("src", CHEER_UP)
    finally:
        context.close()
