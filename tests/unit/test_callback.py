"""The callback channel (plugins/channels/callback.py): signatures both ways, authentication, resends."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

from plugins.channels.callback import sign, signed_headers, verify
from tests.unit.apps import (
    App,
)


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
