"""What the out-of-band channels share (plugins/channels/out_of_band.py): stored once, answered later, bad input
refused."""

from __future__ import annotations

import json

from tests.unit.apps import App, count, slack_headers


async def test_out_of_band_channels_refuse_what_cannot_be_stored(app: App) -> None:
    event = {"type": "event_callback", "team_id": "T1", "event_id": "Ev-nul", "event": {
        "type": "app_mention", "channel": "C1", "user": "U1", "ts": "1.0", "text": "hi \u0000"}}  # fmt: skip
    raw = json.dumps(event).encode()
    response = await app.http.post("/webhooks/slack/webhook", content=raw, headers=slack_headers(raw))
    assert response.status_code == 422 and "NUL" in response.json()["message"]
    odd = {**slack_headers(raw), "X-Slack-Signature": "v0=\u00e9".encode("latin-1")}
    assert (await app.http.post("/webhooks/slack/webhook", content=raw, headers=odd)).status_code == 401
    assert count(app) == 0
