"""Load on a running assistant (not a test): N conversations at once x M messages each, mixing intent and LLM
turns over the REST webhook, REST SSE and the widget's SSE endpoint. Start the assistant first (`make run`).

Each distinct message is first sent alone, one at a time (the baseline: its route and latency when nothing
else runs); then the conversations run together. Each conversation comes from its own client address
(``X-Forwarded-For``, which uvicorn takes from a proxy on loopback), as real visitors would.

Printed: status counts; messages accepted (200) against user rows stored with a reply (lost = accepted
without both); server errors; turns whose route differs from the route the same message got alone (misrouted
by load, e.g. ``nlu_unavailable`` because Rasa was busy); refusals (429/503), each checked for Retry-After
and for storing nothing; p50/p95 latency per route, and its ratio to the same route's baseline.

    .venv/bin/python bench/load.py [--url URL] [--conversations 200] [--messages 4] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median, quantiles
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress
from rich.table import Table
from sqlalchemy import text

from assistant.config import Settings
from assistant.store import Store

console = Console()
MESSAGES = [  # (text, expected kind): intent turns and LLM turns, as a shop's visitors send them
    "hello",
    "what are your opening hours",
    "where is my order 4711",
    "tell me a joke",
    "do you like music",
    "what payment methods do you accept",
    "I'm bored",
    "thanks, bye",
]
ENDPOINTS = ("rest", "rest-sse", "widget")


@dataclass
class Sent:
    endpoint: str
    sender: str
    text: str
    status: int
    seconds: float
    retry_after: str | None = None
    route: str | None = None  # from the SSE message event (the webhook's reply does not say)


@dataclass
class Run:
    sent: list[Sent] = field(default_factory=list)


def body_for(endpoint: str, sender: str, message: str) -> tuple[str, dict[str, Any]]:
    if endpoint == "widget":
        return "/webhooks/web/stream", {"sender": sender, "message": message}
    return ("/webhooks/rest/webhook" if endpoint == "rest" else "/webhooks/rest/stream"), {
        "sender": sender, "message": message,
    }  # fmt: skip


async def send(http: httpx.AsyncClient, endpoint: str, sender: str, message: str, address: str) -> Sent:
    path, body = body_for(endpoint, sender, message)
    headers = {"X-Forwarded-For": address}
    started = time.perf_counter()
    route = None
    try:
        if endpoint == "rest":
            response = await http.post(path, json=body, headers=headers)
            status, retry = response.status_code, response.headers.get("Retry-After")
        else:
            async with http.stream("POST", path, json=body, headers=headers) as response:
                status, retry = response.status_code, response.headers.get("Retry-After")
                event = ""
                async for line in response.aiter_lines():
                    if line.startswith("event: "):
                        event = line.removeprefix("event: ")
                    elif line.startswith("data: ") and event == "message":
                        route = json.loads(line.removeprefix("data: ")).get("route")
    except httpx.HTTPError:
        status, retry = 0, None  # no answer at all
    return Sent(endpoint, sender, message, status, time.perf_counter() - started, retry, route)


async def stored_turns(settings: Settings, prefix: str) -> list[dict[str, Any]]:
    """User rows of this run's senders, each with its route and whether a reply was stored."""
    query = text(
        "SELECT c.sender_id, u.text, u.route, u.reason, "
        "(SELECT count(*) FROM messages b WHERE b.reply_to_id = u.id) AS replies "
        "FROM messages u JOIN conversations c ON c.id = u.conversation_id "
        "WHERE u.role = 'user' AND c.sender_id LIKE :prefix"
    )
    store = Store(settings.db_url, settings.db)
    try:
        return await store.transaction(
            lambda conn: [dict(r._mapping) for r in conn.execute(query, {"prefix": f"{prefix}%"})]
        )
    finally:
        await store.aclose()


def percentiles(values: list[float]) -> tuple[float, float]:
    if len(values) < 2:
        return (values[0], values[0]) if values else (0.0, 0.0)
    cuts = quantiles(values, n=20)
    return median(values), cuts[18]


def figures_of(
    sent: list[Sent], stored: list[dict[str, Any]], alone: dict[str, str | None], alone_seconds: dict[str, list[float]]
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The run's figures from what was sent and what the log stored (``stored_turns``), and each route's latency
    under load against the same messages sent alone."""
    statuses = Counter(s.status for s in sent)
    accepted = [s for s in sent if s.status == 200]
    refused = [s for s in sent if s.status in (429, 503)]
    answered = [r for r in stored if r["replies"] == 1]
    misrouted = [r for r in stored if r["route"] != alone.get(r["text"])]
    by_route: dict[str, list[float]] = defaultdict(list)
    routes = {(r["sender_id"], r["text"]): r["route"] for r in stored}
    for s in accepted:
        by_route[s.route or routes.get((s.sender, s.text)) or "?"].append(s.seconds)
    figures: dict[str, Any] = {
        "requests": len(sent),
        "status counts": dict(sorted(statuses.items())),
        "accepted (200)": len(accepted),
        "user rows stored": len(stored),
        "stored with their reply": len(answered),
        "lost (accepted, not stored with a reply)": max(0, len(accepted) - len(answered)),
        "stored though refused": max(0, len(stored) - len(accepted)),
        "server errors (5xx other than 503, or no answer)": sum(
            1 for s in sent if s.status == 0 or (s.status >= 500 and s.status != 503)
        ),
        "misrouted by load": len(misrouted),
        "misrouted reasons": dict(Counter(r["reason"] for r in misrouted)),
        "refused (429/503)": len(refused),
        "refused without Retry-After": sum(1 for s in refused if not s.retry_after),
    }
    per_route: dict[str, dict[str, Any]] = {}
    for route, seconds in sorted(by_route.items()):
        p50, p95 = percentiles(seconds)
        base = median(alone_seconds[route]) if alone_seconds.get(route) else None
        ratio = p50 / base if base else None
        per_route[route] = {"turns": len(seconds), "p50_s": p50, "p95_s": p95, "alone_p50_s": base, "ratio": ratio}
    return figures, per_route


def show(figures: dict[str, Any], per_route: dict[str, dict[str, Any]], title: str) -> None:
    table = Table(title=title)
    for column in ("figure", "value"):
        table.add_column(column)
    for name, value in figures.items():
        table.add_row(name, str(value))
    console.print(table)
    latency = Table(title="latency per route: under load vs alone (same run)")
    for column in ("route", "turns", "p50 s", "p95 s", "alone p50 s", "p50 ratio"):
        latency.add_column(column)
    for route, row in per_route.items():
        base, ratio = row["alone_p50_s"], row["ratio"]
        latency.add_row(route, str(row["turns"]), f"{row['p50_s']:.2f}", f"{row['p95_s']:.2f}",
                        f"{base:.2f}" if base else "-", f"{ratio:.1f}x" if ratio else "-")  # fmt: skip
    console.print(latency)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=None)
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--messages", type=int, default=4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    settings = Settings()
    url = (args.url or settings.public_url).rstrip("/")
    prefix = f"load{uuid.uuid4().hex[:8]}"
    limits = httpx.Limits(max_connections=args.conversations + 10)
    async with httpx.AsyncClient(base_url=url, timeout=600, limits=limits) as http:
        # the baseline: each message alone, its route (SSE) and latency per route
        alone: dict[str, str | None] = {}
        alone_seconds: dict[str, list[float]] = defaultdict(list)
        for i, message in enumerate(MESSAGES):
            for repeat in range(2):  # the first may pay for warm-up
                sent = await send(http, "rest-sse", f"{prefix}-alone-{i}-{repeat}", message, "10.255.0.1")
                if sent.status != 200:
                    raise SystemExit(f"{message!r} alone got HTTP {sent.status}: is the assistant running at {url}?")
                alone[message] = sent.route
                if repeat:
                    alone_seconds[sent.route or "?"].append(sent.seconds)
        console.print(f"baseline (each message alone): {alone}")

        run = Run()

        async def conversation(n: int, bar: Progress, task: Any) -> None:
            endpoint = ENDPOINTS[n % len(ENDPOINTS)]
            sender = f"{prefix}-{n:04d}-{uuid.uuid4().hex}"  # 16+ characters of [A-Za-z0-9_-]: the widget's form
            address = f"10.{n // 250}.{n % 250}.{1 + n % 200}"
            for m in range(args.messages):
                message = MESSAGES[(n + m) % len(MESSAGES)]
                run.sent.append(await send(http, endpoint, sender, message, address))
                bar.advance(task)

        started = time.perf_counter()
        with Progress(console=console) as bar:
            task = bar.add_task("conversations", total=args.conversations * args.messages)
            await asyncio.gather(*(conversation(n, bar, task) for n in range(args.conversations)))
        wall = time.perf_counter() - started

    stored = [r for r in await stored_turns(settings, prefix) if "-alone-" not in r["sender_id"]]
    figures, per_route = figures_of(run.sent, stored, alone, alone_seconds)
    show(figures, per_route, f"{args.conversations} conversations x {args.messages} messages at {url} ({wall:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({"figures": figures, "latency": per_route, "wall_s": wall}, indent=1))


if __name__ == "__main__":
    asyncio.run(main())
