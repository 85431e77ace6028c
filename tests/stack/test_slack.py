"""The Slack channel on the real stack, with a loopback stand-in for the Slack Web API: signatures, the 3-second
acknowledgement, replies in the thread, retries and bots ignored, chat.postMessage retried after 429, and
buttons as blocks whose clicks are answered."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx

from tests.conftest import LLM_TALK, SLACK_SECRET, Stack
from tests.standins import SlackAPI


def signed(body: bytes, secret: str = SLACK_SECRET, timestamp: int | None = None) -> dict[str, str]:
    """Headers as Slack sends them: v0 HMAC-SHA256 over ``v0:timestamp:body``."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:".encode() + body, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}", "Content-Type": "application/json"}


def event(text: str, channel: str, *, kind: str = "message", **extra: Any) -> dict[str, Any]:
    ts = f"{time.time():.6f}"
    body = {"type": kind, "user": "U123", "text": text, "ts": ts, "channel": channel, "event_ts": ts, **extra}
    if kind == "message":
        body.setdefault("channel_type", "im")
    return {
        "token": "legacy-verification-token",
        "team_id": "T1",
        "api_app_id": "A1",
        "event": body,
        "type": "event_callback",
        "event_id": f"Ev{uuid.uuid4().hex[:10].upper()}",
        "event_time": int(time.time()),
        "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
    }


def post(stack: Stack, payload: dict[str, Any], headers: dict[str, str] | None = None, **sign: Any) -> httpx.Response:
    body = json.dumps(payload).encode()
    return stack.http.post(
        f"{stack.url}/webhooks/slack/webhook", content=body, headers={**signed(body, **sign), **(headers or {})}
    )


def stored(stack: Stack, text: str) -> list[dict[str, Any]]:
    return stack.rows("SELECT * FROM messages WHERE role = 'user' AND text = ?", text)


def test_url_verification_answers_the_challenge(stack: Stack) -> None:
    response = post(
        stack,
        {"token": "t", "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P", "type": "url_verification"},
    )
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_forged_and_stale_requests_get_401_and_are_never_processed(stack: Stack, slack_api: SlackAPI) -> None:
    channel = "DFORGED1"
    text = f"forged message {uuid.uuid4().hex[:6]}"
    payload = event(text, channel)
    assert post(stack, payload, secret="not-the-secret").status_code == 401
    assert post(stack, payload, timestamp=int(time.time()) - 6 * 60).status_code == 401  # stale, correctly signed
    assert post(stack, payload, timestamp=int(time.time()) + 6 * 60).status_code == 401
    body = json.dumps(payload).encode()
    response = stack.http.post(f"{stack.url}/webhooks/slack/webhook", content=body)  # no signature at all
    assert response.status_code == 401
    tampered = {**signed(body)}
    response = stack.http.post(f"{stack.url}/webhooks/slack/webhook", content=body + b" ", headers=tampered)
    assert response.status_code == 401
    time.sleep(3)
    assert stored(stack, text) == []
    assert slack_api.posted_to(channel) == []


def test_direct_message_is_acknowledged_at_once_and_answered_once_in_its_thread(
    stack: Stack, slack_api: SlackAPI
) -> None:
    channel = f"D{uuid.uuid4().hex[:8].upper()}"
    payload = event(LLM_TALK[0], channel)
    started = time.monotonic()
    response = post(stack, payload)
    assert response.status_code == 200
    assert time.monotonic() - started < 3.0, "Slack needs the acknowledgement within 3 seconds"
    slack_api.wait_for(lambda: slack_api.posted_to(channel), 60, "the reply in Slack")

    # Slack did not see the acknowledgement in time and retries the same event twice
    for retry in ("1", "2"):
        again = post(stack, payload, headers={"X-Slack-Retry-Num": retry, "X-Slack-Retry-Reason": "http_timeout"})
        assert again.status_code == 200
    time.sleep(4)
    posts = slack_api.posted_to(channel)
    assert len(posts) == 1, posts
    assert posts[0]["thread_ts"] == payload["event"]["ts"]
    user_rows = stored(stack, LLM_TALK[0])
    mine = [row for row in user_rows if row["external_id"] == f"slack:{payload['event_id']}"]
    assert len(mine) == 1, "a retried event is stored once"
    bot = stack.rows("SELECT * FROM messages WHERE reply_to_id = ?", mine[0]["id"])[0]
    assert posts[0]["text"] == bot["text"] and bot["route"] == "llm"
    outbox = stack.rows("SELECT * FROM outbox WHERE message_id = ?", bot["id"])
    assert outbox[0]["status"] == "delivered" and outbox[0]["attempts"] == 1


def test_app_mention_in_a_channel_is_answered_in_the_thread_without_the_mention(
    stack: Stack, slack_api: SlackAPI
) -> None:
    channel = f"C{uuid.uuid4().hex[:8].upper()}"
    payload = event("<@UBOT> what payment methods do you accept", channel, kind="app_mention", thread_ts="1.000001")
    assert post(stack, payload).status_code == 200
    slack_api.wait_for(lambda: slack_api.posted_to(channel), 60, "the reply to the mention")
    (reply,) = slack_api.posted_to(channel)
    assert reply["thread_ts"] == "1.000001"  # the thread the mention was in
    (row,) = [r for r in stored(stack, "what payment methods do you accept") if r["external_id"]]
    assert row["route"] == "intent"
    # the same text in a channel without a mention is not for the bot
    other = event("what payment methods do you accept", channel, channel_type="channel")
    assert post(stack, other).json()["ignored"]


def test_bots_and_edits_are_ignored(stack: Stack, slack_api: SlackAPI) -> None:
    channel = f"D{uuid.uuid4().hex[:8].upper()}"
    ours = event("a reply we posted ourselves", channel, user="UBOT")
    other_bot = event("beep from another bot", channel, bot_id="B999", subtype="bot_message")
    edit = event("edited text", channel, subtype="message_changed")
    for payload in (ours, other_bot, edit):
        response = post(stack, payload)
        assert response.status_code == 200 and response.json()["ignored"]
    time.sleep(2)
    assert slack_api.posted_to(channel) == []
    assert stored(stack, "a reply we posted ourselves") == []


def test_rate_limited_post_is_retried_until_slack_takes_it(stack: Stack, slack_api: SlackAPI) -> None:
    channel = f"D{uuid.uuid4().hex[:8].upper()}"
    slack_api.rate_limit_next = 2
    assert post(stack, event("what payment methods do you accept", channel)).status_code == 200
    slack_api.wait_for(lambda: slack_api.posted_to(channel), 60, "the reply after two 429s")
    calls = [r.params() for r in slack_api.calls("chat.postMessage") if r.params().get("channel") == channel]
    assert len(calls) == 3 and len(slack_api.posted_to(channel)) == 1


def test_buttons_are_blocks_and_a_click_is_answered_in_the_thread(stack: Stack, slack_api: SlackAPI) -> None:
    """The demo's help response has buttons: posted as an actions block; a click comes back as Slack's
    ``block_actions`` interaction (form-encoded ``payload``), taken as the payload without the NLU, and its
    answer goes to the same thread."""
    channel = f"D{uuid.uuid4().hex[:8].upper()}"
    payload = event("what can you do", channel)
    assert post(stack, payload).status_code == 200
    slack_api.wait_for(lambda: slack_api.posted_to(channel), 60, "the help reply in Slack")
    (helped,) = slack_api.posted_to(channel)
    (actions,) = [b for b in helped["blocks"] if b["type"] == "actions"]
    buttons = {e["text"]["text"]: e for e in actions["elements"]}
    assert [e["value"] for e in buttons.values()] == ["/opening_hours", "/payment_methods", "/contact_human"]

    clicked = buttons["Payment methods"]
    interaction = {
        "type": "block_actions", "trigger_id": f"{uuid.uuid4().int % 10**12}.1.abc",
        "user": {"id": "U123", "username": "ana", "team_id": "T1"}, "team": {"id": "T1", "domain": "shop"},
        "api_app_id": "A1", "channel": {"id": channel, "name": "directmessage"},
        "container": {"type": "message", "message_ts": "1700000001.000100", "channel_id": channel,
                      "thread_ts": payload["event"]["ts"]},
        "actions": [{"type": "button", "action_id": clicked["action_id"], "block_id": "b1", "value": clicked["value"],
                     "text": clicked["text"], "action_ts": f"{time.time():.6f}"}],
    }  # fmt: skip
    body = urlencode({"payload": json.dumps(interaction)}).encode()
    headers = {**signed(body), "Content-Type": "application/x-www-form-urlencoded"}
    response = stack.http.post(f"{stack.url}/webhooks/slack/webhook", content=body, headers=headers)
    assert response.status_code == 200, response.text
    slack_api.wait_for(lambda: len(slack_api.posted_to(channel)) == 2, 60, "the answer to the click")
    answer = slack_api.posted_to(channel)[1]
    assert answer["thread_ts"] == payload["event"]["ts"]
    user = stored(stack, "/payment_methods")[-1]
    assert (user["intent"], user["nlu_model"]) == ("payment_methods", "payload")
    bot = stack.rows("SELECT * FROM messages WHERE reply_to_id = ?", user["id"])[0]
    assert answer["text"] == bot["text"] and bot["answered_by"] == "utter_payment_methods"
