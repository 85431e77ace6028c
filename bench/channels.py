"""Channel overhead, measured in the same run (not a test): for intent-routed messages, how fast Slack,
Telegram and callback requests are acknowledged, and how long until the reply reaches the platform,
against the same turn through the synchronous REST webhook.

Starts its own `assistant serve` (temporary SQLite log) with the channels pointed at the loopback stand-ins
of the Slack Web API, the Telegram Bot API and a callback receiver (tests/standins.py), against the Rasa
and vLLM of a running `assistant up` (URLs from the same ASSISTANT_* settings).

    .venv/bin/python bench/channels.py [--messages 60] [--json out.json]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from assistant.config import Settings
from assistant.infra.services import free_port
from plugins.channels.callback import signed_headers
from tests.standins import CallbackReceiver, LoopbackServer, SlackAPI, TelegramAPI

console = Console()
INTENT_MESSAGES = [
    "what payment methods do you accept",
    "what are your opening hours",
    "how much is shipping",
    "I forgot my password",
    "hello",
    "thanks a lot",
]
SLACK_TOKEN, SLACK_SECRET = "xoxb-bench", "bench-signing-secret"
TELEGRAM_TOKEN, TELEGRAM_SECRET = "42:bench", "bench-secret"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


CALLBACK_SECRET = "bench-callback-signing-secret"


def callback_request(text: str) -> tuple[bytes, dict[str, str]]:
    body = json.dumps({"sender": "bench", "message": text}).encode()
    return body, {"Content-Type": "application/json", **signed_headers(CALLBACK_SECRET, body)}


def start_app(slack: SlackAPI, telegram: TelegramAPI, receiver: CallbackReceiver, data_dir: Path) -> tuple[str, Any]:
    port = free_port()
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(data_dir),
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_CHANNELS": '["rest", "slack", "telegram", "callback"]',
        "ASSISTANT_CHANNEL__SLACK__BOT_TOKEN": SLACK_TOKEN,
        "ASSISTANT_CHANNEL__SLACK__SIGNING_SECRET": SLACK_SECRET,
        "ASSISTANT_CHANNEL__SLACK__API_URL": f"{slack.url}/api/",
        "ASSISTANT_CHANNEL__TELEGRAM__TOKEN": TELEGRAM_TOKEN,
        "ASSISTANT_CHANNEL__TELEGRAM__SECRET_TOKEN": TELEGRAM_SECRET,
        "ASSISTANT_CHANNEL__TELEGRAM__API_URL": f"{telegram.url}/bot",
        "ASSISTANT_CHANNEL__CALLBACK__URL": f"{receiver.url}/replies",
        "ASSISTANT_CHANNEL__CALLBACK__SECRET": CALLBACK_SECRET,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wiring", "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return url, process
        except httpx.HTTPError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("assistant serve did not start")


def slack_request(text: str) -> tuple[bytes, dict[str, str]]:
    ts = f"{time.time():.6f}"
    payload = {
        "type": "event_callback",
        "team_id": "T1",
        "event_id": f"Ev{uuid.uuid4().hex[:12]}",
        "event": {"type": "message", "channel_type": "im", "channel": "DBENCH", "user": "U1", "text": text, "ts": ts},
    }
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SLACK_SECRET.encode(), f"v0:{stamp}:".encode() + body, hashlib.sha256).hexdigest()
    return body, {"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def telegram_request(text: str, update_id: int) -> tuple[bytes, dict[str, str]]:
    message = {
        "message_id": update_id,
        "date": int(time.time()),
        "text": text,
        "from": {"id": 7, "is_bot": False, "first_name": "B"},
        "chat": {"id": 7, "type": "private"},
    }
    body = json.dumps({"update_id": update_id, "message": message}).encode()
    return body, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}


def timed_out_of_band(
    http: httpx.Client, url: str, body: bytes, headers: dict[str, str], server: LoopbackServer, suffix: str
) -> tuple[float, float]:
    """(ack ms, reply-arrived ms) for one message answered out of band."""
    before = len(server.calls(suffix))
    started = time.time()
    response = http.post(url, content=body, headers={"Content-Type": "application/json", **headers})
    ack = time.time() - started
    response.raise_for_status()
    deadline = time.monotonic() + 60
    while len(server.calls(suffix)) == before:
        if time.monotonic() > deadline:
            raise SystemExit(f"no reply reached {suffix}")
        time.sleep(0.001)
    return ack * 1000, (server.calls(suffix)[before].at - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    Settings()  # fail early on broken settings
    slack, telegram, receiver = SlackAPI(SLACK_TOKEN), TelegramAPI(TELEGRAM_TOKEN), CallbackReceiver(fail_first=0)
    with tempfile.TemporaryDirectory() as tmp:
        url, process = start_app(slack, telegram, receiver, Path(tmp))
        try:
            results = measure(url, slack, telegram, receiver, args.messages)
        finally:
            process.terminate()
            process.wait(30)
    report(results, args.json)


def measure(
    url: str, slack: SlackAPI, telegram: TelegramAPI, receiver: CallbackReceiver, n: int
) -> dict[str, dict[str, list[float]]]:
    texts = [INTENT_MESSAGES[i % len(INTENT_MESSAGES)] for i in range(n)]
    results: dict[str, dict[str, list[float]]] = {
        k: {"ack": [], "reply": []} for k in ("rest", "slack", "telegram", "callback")
    }
    with httpx.Client(timeout=60) as http:
        senders: dict[str, Callable[[int, str], tuple[float, float]]] = {
            "slack": lambda i, t: timed_out_of_band(
                http, f"{url}/webhooks/slack/webhook", *slack_request(t), slack, "chat.postMessage"
            ),
            "telegram": lambda i, t: timed_out_of_band(
                http, f"{url}/webhooks/telegram/webhook", *telegram_request(t, 10_000 + i), telegram, "/sendMessage"
            ),
            "callback": lambda i, t: timed_out_of_band(
                http, f"{url}/webhooks/callback/webhook", *callback_request(t), receiver, "/replies"
            ),
        }
        for text in INTENT_MESSAGES:  # warm-up
            http.post(f"{url}/webhooks/rest/webhook", json={"sender": "warm", "message": text})
        for i, text in enumerate(texts):
            started = time.perf_counter()
            http.post(f"{url}/webhooks/rest/webhook", json={"sender": "bench", "message": text}).raise_for_status()
            elapsed = (time.perf_counter() - started) * 1000
            results["rest"]["ack"].append(elapsed)
            results["rest"]["reply"].append(elapsed)
            for name, send in senders.items():
                ack, reply = send(i, text)
                results[name]["ack"].append(ack)
                results[name]["reply"].append(reply)
    return results


def report(results: dict[str, dict[str, list[float]]], out: Path | None) -> None:
    rest = statistics.median(results["rest"]["reply"])
    table = Table(title="intent turns, one at a time: acknowledgement and reply arrival (ms)")
    for column in ("channel", "ack p50", "ack p95", "reply p50", "reply p95", "reply / REST turn (p50)"):
        table.add_column(column, justify="right")
    summary = {}
    for name, values in results.items():
        row = {
            "ack_p50_ms": percentile(values["ack"], 0.5),
            "ack_p95_ms": percentile(values["ack"], 0.95),
            "reply_p50_ms": percentile(values["reply"], 0.5),
            "reply_p95_ms": percentile(values["reply"], 0.95),
        }
        row["reply_vs_rest"] = row["reply_p50_ms"] / rest
        summary[name] = row
        table.add_row(name, *(f"{row[k]:.1f}" for k in list(row)[:4]), f"{row['reply_vs_rest']:.2f}x")
    console.print(table)
    if out:
        out.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
