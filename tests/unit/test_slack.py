"""The Slack channel (plugins/channels/slack.py) against its documented payloads: signatures, retries, escaping."""

from __future__ import annotations

import json

from plugins.channels.slack import _blocks, escape
from tests.unit.apps import (
    App,
    slack_event,
    slack_headers,
    wait_for_reply,
)


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


def test_slack_replies_are_escaped() -> None:
    assert escape("<!channel> a & b <@U1> <http://x|y>") == "&lt;!channel&gt; a &amp; b &lt;@U1&gt; &lt;http://x|y&gt;"
    from assistant.contracts import Citation, Outgoing

    citation = Citation(1, 7, "Ship <!here>", "https://example.com/ship")
    reply = Outgoing("k", "slack", "C1:U1", "<!channel> see [1]", 2, 1, {}, 1, {}, [citation])
    blocks = _blocks(reply)
    assert blocks is not None and blocks[0]["text"]["text"] == "&lt;!channel&gt; see [1]"
    assert "<https://example.com/ship|Ship &lt;!here&gt;>" in blocks[1]["elements"][0]["text"]
