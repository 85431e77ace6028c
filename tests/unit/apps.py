"""The whole app in-process over ASGI, with fake NLU, LLM and model-server backends that implement the
contracts (``tests.unit.fakes``): what the unit tests of the pipeline, the channels and the app drive."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import sqlite3
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from assistant.config import Settings
from assistant.contracts import Action
from assistant.knowledge.indexing import KnowledgeBase
from assistant.store.migrations.migrate import upgrade
from tests.database import BOT_REPLIES, last_turn
from tests.unit.fakes import Broken, FakeEmbedder, FakeLLM, FakeNLU, FakeServer, OrderStatus
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


WEBHOOK = "/webhooks/rest/webhook"


def count(app: App) -> int:
    return len(app.rows("SELECT id FROM messages"))


DOCS = {
    "shipping.md": "# Shipping\n\nWe ship kettles to Norway in six working days. We ship to Sweden in four days.",
    "warranty.md": "# Warranty\n\nKettles carry a five year warranty.",
}


@contextlib.asynccontextmanager
async def app_with_kb(tmp_path: Path, **kb: Any) -> AsyncIterator[App]:
    docs = tmp_path / "kb"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    # the fake embedder's cosines are lower than the real encoder's: a lower floor (no shared word: 0)
    async with start(settings_for(tmp_path, kb={"min_score": 0.3, **kb})) as app:
        state = app.app.state
        await KnowledgeBase(state.settings.kb, state.store, app.embedder).add([docs])
        yield app
