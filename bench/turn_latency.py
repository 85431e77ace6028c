"""Turn latency of the assistant vs the raw components, measured in the same run (not a test).

Intent-routed messages: p50/p95 latency and throughput at 1 and 32 concurrent senders through
``POST /webhooks/rest/webhook`` and directly against Rasa ``/model/parse``.
LLM-routed messages: time to first token and tokens/s through the SSE endpoint vs directly against
vLLM's streaming chat completions with the same prompt.

Needs a running stack (``assistant up``, default settings); URLs come from the same settings (ASSISTANT_*
variables). The assistant's per-sender and per-address shares (``limits.per_sender``, ``limits.per_address``)
hold for a benchmark too, so its turns come from many senders, each from its own address (``X-Forwarded-For``,
which uvicorn takes from a proxy on loopback), at most ``TURNS_PER_CLIENT`` turns each: well inside both shares.

    .venv/bin/python bench/turn_latency.py [--requests 400] [--llm-requests 12] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.table import Table

from assistant.config import Settings
from assistant.domain import Domain

console = Console()
LLM_MESSAGES = ["how are you", "tell me a joke", "what's your favorite color", "do you like music", "I'm bored"]


TURNS_PER_CLIENT = 20  # the default shares are 30 turns a minute per sender and 120 per address


class Clients:
    """Senders and client addresses for the assistant's turns: a new pair every ``per_client`` turns."""

    def __init__(self, run_id: str, per_client: int = TURNS_PER_CLIENT) -> None:
        self.run_id, self.per_client, self.turns = run_id, per_client, 0

    def next(self) -> tuple[str, dict[str, str]]:
        n = self.turns // self.per_client
        self.turns += 1
        return f"bench-{self.run_id}-{n}", {"X-Forwarded-For": f"10.{n // 62500 % 256}.{n // 250 % 250}.{1 + n % 250}"}


@dataclass
class Load:
    target: str
    concurrency: int
    requests: int
    p50_ms: float
    p95_ms: float
    throughput: float


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run_load(
    target: str, call: Callable[[int, str], Awaitable[None]], texts: list[str], concurrency: int, total: int
) -> Load:
    latencies: list[float] = []
    counter = iter(range(total))

    async def worker(worker_id: int) -> None:
        for i in counter:
            started = time.perf_counter()
            await call(worker_id, texts[i % len(texts)])
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    return Load(
        target,
        concurrency,
        total,
        percentile(latencies, 0.5) * 1000,
        percentile(latencies, 0.95) * 1000,
        total / elapsed,
    )


async def intent_bench(
    settings: Settings, http: httpx.AsyncClient, total: int, rounds: int, clients: Clients
) -> list[Load]:
    nlu = yaml.safe_load((settings.bot_dir / "data" / "nlu.yml").read_text())["nlu"]
    candidates = [
        line.removeprefix("- ").strip()
        for block in nlu
        if block.get("intent") not in (None, *settings.router.llm_intents)
        for line in block["examples"].strip().splitlines()
        if "[" not in line
    ]

    async def via_assistant(_worker: int, text: str) -> dict:
        sender, headers = clients.next()
        r = await http.post(
            f"{settings.public_url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, headers=headers
        )
        r.raise_for_status()
        return r.json()

    async def via_rasa(_worker: int, text: str) -> None:
        r = await http.post(f"{settings.rasa.url}/model/parse", json={"text": text}, params=rasa_params(settings))
        r.raise_for_status()

    # keep only messages the router answers with an intent reply (the path being measured)
    router_texts = []
    for text in candidates[::3]:
        sender, headers = clients.next()
        r = await http.post(
            f"{settings.public_url}/webhooks/rest/stream", json={"sender": sender, "message": text}, headers=headers
        )
        r.raise_for_status()
        if '"route": "intent"' in r.text:
            router_texts.append(text)
    console.print(f"{len(router_texts)} intent-routed messages")

    async def assistant_call(worker: int, text: str) -> None:
        await via_assistant(worker, text)

    results: list[Load] = []
    for concurrency in (1, 32):
        for _ in range(rounds):  # alternate, so drift on the machine hits both alike
            results.append(await run_load("rasa /model/parse", via_rasa, router_texts, concurrency, total))
            results.append(await run_load("assistant webhook", assistant_call, router_texts, concurrency, total))
    return results


@dataclass
class Stream:
    target: str
    ttft_ms: float
    tokens_per_s: float
    tokens: int


async def sse_stream(settings: Settings, http: httpx.AsyncClient, text: str, clients: Clients) -> Stream:
    started = time.perf_counter()
    first = last = None
    tokens = 0
    sender, headers = clients.next()
    async with http.stream(
        "POST", f"{settings.public_url}/webhooks/rest/stream", json={"sender": sender, "message": text}, headers=headers
    ) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line == "event: token":
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    assert first is not None and last is not None, "no tokens streamed: is the text LLM-routed?"
    return Stream("assistant SSE", (first - started) * 1000, (tokens - 1) / max(last - first, 1e-9), tokens)


def rasa_params(settings: Settings) -> dict[str, str]:
    return {"token": settings.rasa.token} if settings.rasa.token else {}


def vllm_headers(settings: Settings) -> dict[str, str]:
    key = settings.vllm.api_key
    return {"Authorization": f"Bearer {key}"} if key != "EMPTY" else {}


async def vllm_stream(settings: Settings, http: httpx.AsyncClient, persona: str, text: str) -> Stream:
    body = {
        "model": settings.llm.adapter or settings.vllm.served_model_name,
        "messages": [{"role": "system", "content": persona}, {"role": "user", "content": text}],
        "max_tokens": settings.llm.max_tokens,
        "temperature": settings.llm.temperature,
        "stream": True,
    }
    started = time.perf_counter()
    first = last = None
    tokens = 0
    async with http.stream(
        "POST", f"{settings.vllm.url}/v1/chat/completions", json=body, headers=vllm_headers(settings)
    ) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            delta = json.loads(line[6:])["choices"][0]["delta"].get("content")
            if delta:
                now = time.perf_counter()
                first = first or now
                last = now
                tokens += 1
    assert first is not None and last is not None
    return Stream("vLLM direct", (first - started) * 1000, (tokens - 1) / max(last - first, 1e-9), tokens)


async def llm_bench(settings: Settings, http: httpx.AsyncClient, requests: int, clients: Clients) -> list[Stream]:
    persona = Domain.load(settings.bot_dir).persona
    streams = []
    for i in range(requests):
        text = LLM_MESSAGES[i % len(LLM_MESSAGES)]
        streams.append(await vllm_stream(settings, http, persona, text))
        streams.append(await sse_stream(settings, http, text, clients))
    return streams


def summarise_loads(loads: list[Load]) -> dict[str, float]:
    table = Table(title="intent-routed turns")
    for column in ("target", "senders", "requests", "p50 ms", "p95 ms", "req/s"):
        table.add_column(column)
    ratios: dict[str, float] = {}
    for concurrency in (1, 32):
        rows = [x for x in loads if x.concurrency == concurrency]
        merged = {}
        for target in ("rasa /model/parse", "assistant webhook"):
            mine = [x for x in rows if x.target == target]
            merged[target] = Load(
                target,
                concurrency,
                sum(x.requests for x in mine),
                statistics.median(x.p50_ms for x in mine),
                statistics.median(x.p95_ms for x in mine),
                statistics.mean(x.throughput for x in mine),
            )
            m = merged[target]
            table.add_row(
                target, str(concurrency), str(m.requests), f"{m.p50_ms:.1f}", f"{m.p95_ms:.1f}", f"{m.throughput:.0f}"
            )
        raw, ours = merged["rasa /model/parse"], merged["assistant webhook"]
        ratios[f"p50_ratio_c{concurrency}"] = ours.p50_ms / raw.p50_ms
        ratios[f"p95_ratio_c{concurrency}"] = ours.p95_ms / raw.p95_ms
        ratios[f"throughput_ratio_c{concurrency}"] = ours.throughput / raw.throughput
    console.print(table)
    return ratios


def summarise_streams(streams: list[Stream], nlu_p50_ms: float) -> dict[str, float]:
    table = Table(title="LLM-routed turns (streamed)")
    for column in ("target", "streams", "TTFT p50 ms", "TTFT mean ms", "tokens/s p50", "tokens/stream"):
        table.add_column(column)
    stats = {}
    for target in ("vLLM direct", "assistant SSE"):
        mine = [s for s in streams if s.target == target]
        stats[target] = (statistics.median(s.ttft_ms for s in mine), statistics.median(s.tokens_per_s for s in mine))
        table.add_row(
            target,
            str(len(mine)),
            f"{stats[target][0]:.1f}",
            f"{statistics.mean(s.ttft_ms for s in mine):.1f}",
            f"{stats[target][1]:.1f}",
            f"{statistics.mean(s.tokens for s in mine):.0f}",
        )
    console.print(table)
    raw, ours = stats["vLLM direct"], stats["assistant SSE"]
    return {
        "ttft_overhead_pct": (ours[0] / raw[0] - 1) * 100,
        # what is left once the Rasa parse the router needs (its p50 at 1 sender, this run) is taken out
        "ttft_overhead_excluding_nlu_parse_pct": ((ours[0] - nlu_p50_ms) / raw[0] - 1) * 100,
        "tokens_per_s_ratio": ours[1] / raw[1],
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400, help="requests per load run")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per concurrency")
    parser.add_argument("--llm-requests", type=int, default=12, help="streams per target")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    settings = Settings()
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        clients = Clients(uuid.uuid4().hex[:6])
        loads = await intent_bench(settings, http, args.requests, args.rounds, clients)
        streams = await llm_bench(settings, http, args.llm_requests, clients)
    nlu_p50 = statistics.median(x.p50_ms for x in loads if x.target.startswith("rasa") and x.concurrency == 1)
    ratios = summarise_loads(loads) | summarise_streams(streams, nlu_p50)
    console.print("targets: p50 ratio ≤ 1.15, throughput ratio ≥ 0.9, TTFT overhead ≤ 5 %")
    console.print_json(json.dumps({k: round(v, 3) for k, v in ratios.items()}))
    if args.json:
        args.json.write_text(
            json.dumps(
                {"loads": [asdict(x) for x in loads], "streams": [asdict(s) for s in streams], **ratios}, indent=2
            )
        )


if __name__ == "__main__":
    asyncio.run(main())
