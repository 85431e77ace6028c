"""The whole app in-process over ASGI, with fake NLU and LLM backends that implement the contracts: every route
and reason a turn can take, what is stored for it, streaming, the channels' validation and signatures, the
admin API, and the watcher that follows the registry."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from assistant.config import Settings
from assistant.contracts import Action
from assistant.store import registry, runtime
from assistant.store.migrations.migrate import upgrade
from plugins.channels.callback import sign, signed_headers, verify
from tests.database import BOT_REPLIES, last_turn
from tests.unit.fakes import NLU_DOWN, Broken, FakeEmbedder, FakeLLM, FakeNLU, FakeServer, OrderStatus
from wiring.app import create_app

ADMIN = {"Authorization": "Bearer unit-test-admin-token"}
SLACK_SECRET, TELEGRAM_SECRET = "unit-slack-signing-secret", "unit-telegram-webhook-secret"
FALLBACK = Settings.model_fields["llm"].default.fallback_reply
WIDGET_SENDER = "w" * 24


@dataclass
class App:
    http: httpx.AsyncClient
    app: FastAPI
    db: Path
    nlu: FakeNLU
    llm: FakeLLM
    server: FakeServer
    embedder: FakeEmbedder | None = None

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        with sqlite3.connect(self.db) as conn:
            conn.row_factory = sqlite3.Row
            return [dict(row) for row in conn.execute(sql, params)]

    def turn(self, sender: str) -> tuple[dict[str, Any], dict[str, Any]]:
        return last_turn(self.rows, sender)

    async def say(self, sender: str, text: str) -> str:
        response = await self.http.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        assert response.status_code == 200, response.text
        reply, *custom = response.json()  # a reply with sources: then its citations, as a custom element
        assert reply["recipient_id"] == sender and all("custom" in c for c in custom)
        return str(reply["text"])


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    """Every channel on, with options; ``extra`` overrides (``channel`` options are added to the defaults)."""
    channel = {
        "slack": {"bot_token": "xoxb-1", "signing_secret": SLACK_SECRET, "api_url": "http://127.0.0.1:9/api/"},
        "telegram": {"token": "1:a", "secret_token": TELEGRAM_SECRET, "api_url": "http://127.0.0.1:9/bot"},
        "callback": {"url": "http://127.0.0.1:9/replies", "secret": "unit-callback-signing-secret"},
        **extra.pop("channel", {}),
    }
    fields: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": f"sqlite+aiosqlite:///{tmp_path / 'app.db'}",
        "credentials_file": tmp_path / "no-credentials.yml",
        "channels": ["rest", "web", "slack", "telegram", "callback", "socketio"],
        "channel": channel,
        "admin_token": "unit-test-admin-token",
    }
    return Settings(**{**fields, **extra})


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path)) as app:
        yield app


class start:
    """The app with fakes, its lifespan running, and a client talking to it over ASGI."""

    def __init__(self, settings: Settings, nlu: Any = None) -> None:
        self.settings = settings
        made: dict[str, Any] = {}

        def remember(cls: Any) -> Any:
            def build(*args: Any) -> Any:
                made[cls.__name__] = cls(*args)
                return made[cls.__name__]

            return build

        actions: dict[str, Action] = {"action_order_status": OrderStatus(), "action_broken": Broken()}
        self.made = made
        self.app = create_app(
            settings,
            nlu=nlu or remember(FakeNLU),
            llm=remember(FakeLLM),
            llm_server=remember(FakeServer),
            actions=actions,
            embedder=remember(FakeEmbedder),
        )

    async def __aenter__(self) -> App:
        await asyncio.to_thread(upgrade, self.settings.db_url)
        self.lifespan = self.app.router.lifespan_context(self.app)
        await self.lifespan.__aenter__()
        transport = httpx.ASGITransport(app=self.app)
        self.http = httpx.AsyncClient(transport=transport, base_url="http://app")
        db = Path(self.settings.db_url.split("///", 1)[1])
        made = self.made
        return App(
            self.http, self.app, db, made.get("FakeNLU"), made["FakeLLM"], made["FakeServer"], made.get("FakeEmbedder")
        )  # type: ignore[arg-type]

    async def __aexit__(self, *exc: object) -> None:
        await self.http.aclose()
        await self.lifespan.__aexit__(None, None, None)


# ---------------------------------------------------------------- routes and reasons


async def test_confident_intent_gets_its_templated_reply(running: App) -> None:
    text = await running.say("ana", "hello")
    user, bot = running.turn("ana")
    assert (user["intent"], user["route"], user["reason"]) == ("greet", "intent", "confident")
    assert (bot["route"], bot["reason"], bot["answered_by"], bot["text"]) == (
        "intent",
        "confident",
        "utter_greet",
        text,
    )
    assert user["nlu_model"] == "fake-nlu.tar.gz" and json.loads(user["ranking"])[0]["name"] == "greet"
    assert running.llm.calls == []


async def test_action_answers_its_intent_and_remembers_slots(running: App) -> None:
    assert await running.say("bo", "where is order 4711") == "Order 4711 is on its way."
    _, bot = running.turn("bo")
    assert (bot["answered_by"], bot["reason"]) == ("action_order_status", "confident")
    (conversation,) = running.rows("SELECT slots FROM conversations WHERE sender_id = 'bo'")
    assert json.loads(conversation["slots"]) == {"order_id": "4711", "last_order": "4711"}


async def test_a_failing_action_gets_the_fallback_and_its_error_is_stored(running: App) -> None:
    assert await running.say("cy", "break the action") == FALLBACK
    _, bot = running.turn("cy")
    assert (bot["route"], bot["reason"]) == ("intent", "action_failed")
    assert "ZeroDivisionError" in bot["error"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("how are you", "llm_intent"),
        ("hmm maybe", "low_confidence"),
        ("hi or bye", "ambiguous"),
        ("nothing at all", "no_intent"),
        (NLU_DOWN, "nlu_unavailable"),
        ("what is my balance", "no_response"),
    ],
)
async def test_llm_routes_and_their_reasons(running: App, text: str, reason: str) -> None:
    sender = f"u-{uuid.uuid4().hex[:6]}"
    assert await running.say(sender, text) == "I am fine, thanks!"
    user, bot = running.turn(sender)
    assert (bot["route"], bot["reason"], bot["answered_by"], bot["error"]) == ("llm", reason, "base", None)
    assert (bot["prompt_tokens"], bot["completion_tokens"]) == (12, 3)
    prompt = json.loads(bot["prompt"])
    assert prompt[0]["role"] == "system" and prompt[-1] == {"role": "user", "content": text}
    assert (user["error"] is not None) == (reason == "nlu_unavailable")


async def test_llm_down_gets_the_fallback(running: App) -> None:
    running.llm.script.fail = True
    assert await running.say("dee", "how are you") == FALLBACK
    _, bot = running.turn("dee")
    assert (bot["route"], bot["reason"]) == ("llm", "llm_unavailable") and "fake LLM is down" in bot["error"]


async def test_an_empty_llm_reply_gets_the_fallback(running: App) -> None:
    running.llm.script.pieces = ["  ", ""]
    assert await running.say("eve", "how are you") == FALLBACK
    assert running.turn("eve")[1]["reason"] == "llm_empty"


async def test_history_goes_into_the_prompt(running: App) -> None:
    await running.say("fay", "hello")
    await running.say("fay", "how are you")
    _, messages = running.llm.calls[-1]
    assert [m.role for m in messages] == ["system", "user", "assistant", "user"]
    assert messages[1].content == "hello"


async def test_speculative_start_is_cancelled_for_intent_turns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    settings = settings_for(tmp_path)
    settings.llm.speculative_start = True
    async with start(settings) as app:
        app.llm.script.hang = True
        app.nlu.delay_s = 0.2  # the LLM starts while the NLU parses
        await app.say("gus", "hello")
        await asyncio.sleep(0.05)
        assert len(app.llm.calls) == 1 and app.llm.cancelled == 1  # started while parsing, then cancelled
        assert app.turn("gus")[1]["answered_by"] == "utter_greet"


async def test_stream_sends_tokens_then_the_stored_message(running: App) -> None:
    response = await running.http.post("/webhooks/rest/stream", json={"sender": "hal", "message": "how are you"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
    events = [
        (block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
        for block in response.text.strip().split("\n\n")
    ]
    names = [e for e, _ in events]
    assert names[-2:] == ["message", "done"] and set(names[:-2]) == {"token"} and len(names) >= 3
    message = events[-2][1]
    assert message["text"] == "I am fine, thanks!" and message["route"] == "llm" and message["reason"] == "llm_intent"
    # the guards hold back the last words while the reply streams; the pieces add up to the stored reply
    assert "".join(data["text"] for name, data in events if name == "token") == message["text"]
    assert running.turn("hal")[1]["id"] == message["message_id"]


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        ({"sender": "x", "message": "   "}, 422, "message must not be empty"),
        ({"sender": "", "message": "hi"}, 422, "sender"),
        ({"message": "hi"}, 422, "sender: Field required"),
        ({"sender": "x", "message": "a" * 5000}, 413, "the limit is 4096"),
    ],
)
async def test_rest_refuses_bad_messages_with_a_sentence(
    running: App, body: dict[str, Any], status: int, says: str
) -> None:
    response = await running.http.post("/webhooks/rest/webhook", json=body)
    assert response.status_code == status
    assert says in response.text
    assert running.rows("SELECT count(*) AS n FROM messages")[0]["n"] == 0


async def test_invalid_json_is_a_422_with_a_sentence(running: App) -> None:
    response = await running.http.post(
        "/webhooks/rest/webhook", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422 and "not valid JSON" in response.json()["message"]


# ---------------------------------------------------------------- web widget


async def test_widget_history_and_feedback_only_for_its_own_conversation(running: App) -> None:
    response = await running.http.post("/webhooks/web/stream", json={"sender": WIDGET_SENDER, "message": "hello"})
    assert response.status_code == 200
    history = (await running.http.get("/webhooks/web/history", params={"sender": WIDGET_SENDER})).json()
    assert (history[0]["role"], history[0]["text"], history[1]["role"]) == ("user", "hello", "bot")
    bot_id = history[1]["id"]
    rated = await running.http.post(
        "/webhooks/web/feedback", json={"sender": WIDGET_SENDER, "message_id": bot_id, "rating": "up"}
    )
    assert rated.status_code == 201
    again = (await running.http.get("/webhooks/web/history", params={"sender": WIDGET_SENDER})).json()
    assert again[1]["rating"] == "up"
    other = await running.http.post(
        "/webhooks/web/feedback", json={"sender": "z" * 24, "message_id": bot_id, "rating": "down"}
    )
    assert other.status_code == 404
    empty = await running.http.post("/webhooks/web/feedback", json={"sender": WIDGET_SENDER, "message_id": bot_id})
    assert empty.status_code == 422 and "give a rating" in empty.text
    bad_sender = await running.http.get("/webhooks/web/history", params={"sender": "short"})
    assert bad_sender.status_code == 422


# ---------------------------------------------------------------- admin API


async def test_admin_api_needs_its_token_and_checks_messages(running: App) -> None:
    await running.say("ian", "how are you")
    user, bot = running.turn("ian")
    assert (await running.http.get("/api/models")).status_code == 401
    wrong = {"Authorization": "Bearer nope"}
    assert (
        await running.http.post(f"/api/messages/{bot['id']}/feedback", json={"rating": "up"}, headers=wrong)
    ).status_code == 401
    given = await running.http.post(
        f"/api/messages/{bot['id']}/feedback", json={"rating": "down", "correction": "Great, thanks!"}, headers=ADMIN
    )
    assert given.status_code == 201
    on_user = await running.http.post(f"/api/messages/{user['id']}/feedback", json={"rating": "up"}, headers=ADMIN)
    assert on_user.status_code == 409 and "user message" in on_user.text
    missing = await running.http.post("/api/messages/999999/feedback", json={"rating": "up"}, headers=ADMIN)
    assert missing.status_code == 404
    label = await running.http.post(
        f"/api/messages/{user['id']}/label", json={"intent": "chitchat", "entities": []}, headers=ADMIN
    )
    assert label.status_code == 201 and label.json()["text"] == "how are you"
    bad_name = await running.http.post(f"/api/messages/{user['id']}/label", json={"intent": "no spaces"}, headers=ADMIN)
    assert bad_name.status_code == 422
    assert (await running.http.get("/api/models", headers=ADMIN)).json() == []


# ---------------------------------------------------------------- out-of-band channels


def slack_headers(body: bytes, secret: str = SLACK_SECRET, age_s: int = 0) -> dict[str, str]:
    ts = str(int(time.time()) - age_s)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": "application/json"}


def slack_event(text: str, event_id: str) -> bytes:
    event = {"type": "message", "channel_type": "im", "user": "U1", "text": text, "ts": "1.0", "channel": "D1"}
    return json.dumps({"type": "event_callback", "team_id": "T1", "event_id": event_id, "event": event}).encode()


async def wait_for_reply(app: App, sender: str) -> dict[str, Any]:
    for _ in range(200):
        if rows := app.rows(BOT_REPLIES, sender):
            return rows[-1]
        await asyncio.sleep(0.02)
    raise AssertionError(f"no reply for {sender}")


async def test_slack_checks_signatures_and_takes_each_event_once(running: App) -> None:
    challenge = json.dumps({"type": "url_verification", "challenge": "c-1"}).encode()
    assert (
        await running.http.post("/webhooks/slack/webhook", content=challenge, headers=slack_headers(challenge))
    ).json() == {"challenge": "c-1"}
    body = slack_event("hello", "Ev1")
    forged = await running.http.post("/webhooks/slack/webhook", content=body, headers=slack_headers(body, "wrong"))
    stale = await running.http.post("/webhooks/slack/webhook", content=body, headers=slack_headers(body, age_s=600))
    assert forged.status_code == stale.status_code == 401
    ok = await running.http.post("/webhooks/slack/webhook", content=body, headers=slack_headers(body))
    assert ok.json() == {"ok": True}
    retry = await running.http.post("/webhooks/slack/webhook", content=body, headers=slack_headers(body))
    assert retry.json() == {"ok": True, "duplicate": True}
    array = b"[1, 2]"
    assert (
        await running.http.post("/webhooks/slack/webhook", content=array, headers=slack_headers(array))
    ).status_code == 400
    reply = await wait_for_reply(running, "D1:U1")
    assert reply["answered_by"] == "utter_greet"
    assert running.rows("SELECT channel, status FROM outbox") == [{"channel": "slack", "status": "pending"}]


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


async def test_callback_webhook_accepts_once_and_signatures_verify() -> None:
    body, ts = b'{"text": "hi"}', str(int(time.time()))
    signature = sign("secret", ts, body)
    assert verify("secret", ts, body, signature)
    assert not verify("other", ts, body, signature) and not verify("secret", ts, body + b" ", signature)
    assert not verify("secret", str(int(time.time()) - 3600), body, sign("secret", str(int(time.time()) - 3600), body))


async def _callback(
    running: App, body: dict[str, Any], secret: str | None = "unit-callback-signing-secret"
) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = {"Content-Type": "application/json", **(signed_headers(secret, raw) if secret else {})}
    return await running.http.post("/webhooks/callback/webhook", content=raw, headers=headers)


async def test_callback_channel_refuses_resends(running: App) -> None:
    body = {"sender": "svc", "message": "hello", "message_id": "m-1"}
    first = (await _callback(running, body)).json()
    assert first["status"] == "success" and isinstance(first["message_id"], int)
    assert (await _callback(running, body)).json() == {"status": "duplicate"}


async def test_callback_webhook_authenticates_its_caller(running: App) -> None:
    body = {"sender": "svc", "message": "hello"}
    before = len(running.rows("SELECT id FROM messages"))
    for secret in (None, "wrong-secret"):
        refused = await _callback(running, body, secret)
        assert refused.status_code == 401 and "X-Assistant-Signature" in refused.json()["message"]
    raw = json.dumps(body).encode()
    stale = {"X-Assistant-Timestamp": str(int(time.time()) - 3600)}
    stale["X-Assistant-Signature"] = sign("unit-callback-signing-secret", stale["X-Assistant-Timestamp"], raw)
    assert (await running.http.post("/webhooks/callback/webhook", content=raw, headers=stale)).status_code == 401
    odd = {"X-Assistant-Timestamp": "1", "X-Assistant-Signature": "sha256=\u00e9\u00e9".encode("latin-1")}
    assert (await running.http.post("/webhooks/callback/webhook", content=raw, headers=odd)).status_code == 401
    assert len(running.rows("SELECT id FROM messages")) == before  # nothing stored
    bad_id = await _callback(running, {**body, "message_id": "<script>"})
    assert bad_id.status_code == 422 and "message_id" in bad_id.json()["message"]


# ---------------------------------------------------------------- serving state


async def test_the_app_follows_the_registry_and_the_nlu_endpoint(running: App) -> None:
    store = running.app.state.store
    adapter = running.app.state.settings.data_dir / "adapters" / "llm-0001"

    def promote(conn: Any) -> None:
        record = registry.register(conn, "llm", status=registry.CANDIDATE, path=str(adapter))
        registry.activate(conn, record.version)
        runtime.put(conn, runtime.NLU_ENDPOINT, {"url": "http://standin:1"})

    await store.transaction(promote)
    for _ in range(50):
        status = (await running.http.get("/status", headers=ADMIN)).json()
        if status["llm"]["active_model"] == "llm-0001" and status["nlu"]["endpoint"]:
            break
        await asyncio.sleep(0.1)
    assert status["llm"]["active_model"] == "llm-0001" and status["nlu"]["endpoint"] == "http://standin:1"
    assert running.server.served[-1] == "llm-0001"  # the LLM server was asked to serve it first
    await running.say("jo", "how are you")
    assert running.llm.calls[-1][0] == "llm-0001" and running.nlu.endpoints[-1] == "http://standin:1"
    assert running.turn("jo")[1]["answered_by"] == "llm-0001"


async def test_metrics_count_turns(running: App) -> None:
    await running.say("kim", "hello")
    text = (await running.http.get("/metrics")).text
    assert 'assistant_turns_total{reason="confident",route="intent"}' in text


async def test_an_nlu_override_left_by_a_dead_process_expires(running: App) -> None:
    import os
    import socket
    from datetime import timedelta

    from sqlalchemy import update

    from assistant.store.tables import RuntimeSetting
    from assistant.workers.model_watcher import ActiveModelWatcher

    store, pipeline = running.app.state.store, running.app.state.pipeline
    watcher = ActiveModelWatcher(running.app.state.settings, store, pipeline.serving, running.server)
    host = socket.gethostname()

    async def override(holder: str | None, age_s: float = 0) -> str | None:
        value = {"url": "http://standin:1", **({"holder": holder} if holder else {})}
        await store.transaction(lambda conn: runtime.put(conn, runtime.NLU_ENDPOINT, value))
        if age_s:
            table = RuntimeSetting.__table__
            old = datetime.now(UTC) - timedelta(seconds=age_s)
            await store.transaction(lambda conn: conn.execute(update(table).values(updated_at=old)))
        await watcher.sync_once()
        return pipeline.serving.nlu_endpoint

    assert await override(f"{host}:{os.getpid()}:live") == "http://standin:1"  # its holder is alive
    assert await override(None) == "http://standin:1"  # set by hand (no holder): kept until removed
    assert await override(f"{host}:999999999:dead") is None  # SIGKILLed mid-swap: at once
    assert not running.rows("SELECT key FROM runtime_settings")
    assert await override(f"elsewhere:{os.getpid()}:x", age_s=121) is None  # another host: after the stale time
    assert await override(f"elsewhere:{os.getpid()}:x", age_s=60) == "http://standin:1"
