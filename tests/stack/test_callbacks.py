"""REST callback mode: replies POSTed to the integrator, signed, retried with backoff from the outbox, and
not lost when the assistant is killed and restarted. Runs its own app (`assistant serve`, own database)
against the stack's real Rasa and vLLM, so that it can kill and restart it."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugins.channels.callback import signed_headers
from tests.conftest import LLM_TALK, Stack, free_port
from tests.database import TestDatabase
from tests.standins import CallbackReceiver

pytestmark = pytest.mark.database  # runs in the Postgres pass too

SECRET = "callback-signing-secret"


class App:
    """`assistant serve` with the callback channel, restartable on the same database."""

    def __init__(self, stack: Stack, data_dir: Path, receiver: CallbackReceiver) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = TestDatabase.for_tests("assistant_callbacks", data_dir / "assistant.db")
        self.log = data_dir / "serve.log"
        self.env = {
            **stack.env,
            "ASSISTANT_DATA_DIR": str(data_dir),
            "ASSISTANT_DATABASE_URL": self.db.url,
            "ASSISTANT_PORT": str(self.port),
            "ASSISTANT_CHANNELS": '["rest", "callback"]',
            "ASSISTANT_CHANNEL__CALLBACK__URL": f"{receiver.url}/replies",
            "ASSISTANT_CHANNEL__CALLBACK__SECRET": SECRET,
            "ASSISTANT_DELIVERY__BACKOFF_BASE_S": "0.5",
            "ASSISTANT_DELIVERY__BACKOFF_MAX_S": "2",
            "ASSISTANT_DELIVERY__RECOVER_AFTER_S": "3",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "wiring", "serve"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()[-3000:]
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        pytest.fail(f"`assistant serve` did not start:\n{self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(30)

    def post(self, body: dict[str, Any], signed: bool = True) -> httpx.Response:
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **(signed_headers(SECRET, raw) if signed else {})}
        return httpx.post(f"{self.url}/webhooks/callback/webhook", content=raw, headers=headers, timeout=30)

    def send(self, sender: str, text: str, message_id: str | None = None) -> dict[str, Any]:
        response = self.post({"sender": sender, "message": text, **({"message_id": message_id} if message_id else {})})
        assert response.status_code == 200, response.text
        return response.json()

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.db.rows(sql, *params)


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(fail_first=5)
    yield server
    server.close()


@pytest.fixture
def app(stack: Stack, tmp_path: Path, receiver: CallbackReceiver) -> Iterator[App]:
    app = App(stack, tmp_path, receiver)
    app.start()
    yield app
    if app.process and app.process.poll() is None:
        app.process.terminate()
        app.process.wait(30)


def test_replies_survive_failures_and_a_restart_signed_and_keyed(app: App, receiver: CallbackReceiver) -> None:
    sender = f"integrator-{uuid.uuid4().hex[:6]}"
    accepted = [
        app.send(sender, "what payment methods do you accept", message_id="m-1"),
        app.send(sender, LLM_TALK[0], message_id="m-2"),
        app.send(sender, "hello there", message_id="m-3"),
    ]
    assert all(a["status"] == "success" for a in accepted)
    assert app.send(sender, LLM_TALK[0], message_id="m-2") == {"status": "duplicate"}  # a resend
    ids = {a["message_id"] for a in accepted}

    # the receiver is down: deliveries fail and are retried; kill the app while they are pending
    receiver.wait_for(lambda: len(receiver.requests) >= 3, 60, "the first failed deliveries")
    app.kill()
    pending = app.rows("SELECT status FROM outbox WHERE status = 'pending'")
    # and one more message is accepted just before a crash, so that its turn never finished
    app.start()
    late = app.send(sender, LLM_TALK[1], message_id="m-4")
    app.kill()
    unanswered = app.rows("SELECT id FROM messages WHERE reply_to_id = ?", late["message_id"])
    ids.add(late["message_id"])

    app.start()
    receiver.wait_for(lambda: {r.json()["in_reply_to"] for r in receiver.accepted()} >= ids, 90, "every reply")
    assert pending, "some deliveries were still pending when the app was killed"

    by_key: dict[str, set[int]] = {}
    for request in receiver.requests:
        body, headers = request.body, request.headers
        timestamp = headers["x-assistant-timestamp"]
        expected = hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        assert hmac.compare_digest(headers["x-assistant-signature"], f"sha256={expected}")
        assert abs(time.time() - int(timestamp)) < 300
        payload = json.loads(body)
        assert payload["recipient_id"] == sender and payload["text"]
        by_key.setdefault(headers["idempotency-key"], set()).add(payload["message_id"])
    assert all(len(messages) == 1 for messages in by_key.values()), "a key always names the same reply"
    assert len(by_key) == len(ids), "each reply has one key, however often it was sent"
    assert len(receiver.requests) > len(ids), "the failed attempts were retried with the same keys"

    outbox = "SELECT m.id, m.reply_to_id, m.text, o.status FROM messages m JOIN outbox o ON o.message_id = m.id"
    # the worker marks a row delivered after the receiver's answer reaches it
    receiver.wait_for(lambda: all(r["status"] == "delivered" for r in app.rows(outbox)), 30, "rows delivered")
    replies = app.rows(outbox)
    assert {r["reply_to_id"] for r in replies} == ids and all(r["status"] == "delivered" for r in replies)
    delivered = {r.json()["in_reply_to"]: r.json()["text"] for r in receiver.accepted()}
    assert all(delivered[r["reply_to_id"]] == r["text"] for r in replies)
    if not unanswered:  # the usual case: killed before its reply was stored, so recovery answered it
        assert f"message {late['message_id']} on callback has no reply: answering it now" in app.log.read_text()


def test_bad_requests_get_clear_errors(app: App) -> None:
    response = app.post({"sender": "x"})
    assert response.status_code == 422 and "message" in response.json()["message"]
    response = app.post({"sender": "x", "message": "  "})
    assert response.status_code == 422
    response = app.post({"sender": "x", "message": "hello"}, signed=False)
    assert response.status_code == 401 and "X-Assistant-Signature" in response.json()["message"]
