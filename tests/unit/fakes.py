"""Small fakes that implement our own contracts (not HTTP mocks): an NLU that classifies by a table, an LLM
that writes scripted replies, a model server that remembers what it was asked to serve, and actions."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.contracts import (
    ActionContext,
    ActionResult,
    BackendUnavailable,
    ChatMessage,
    Generation,
    Health,
    IntentScore,
    ModelKind,
    ModelVersion,
    ParseResult,
    Reroute,
    ServiceSpec,
    ServingState,
    Usage,
)

NLU_DOWN = "<nlu down>"  # a message the fake NLU cannot parse
KB_DOWN = "<kb down>"  # a message the fake embedder fails on


def parse(*scores: tuple[str, float], entities: list[dict[str, object]] | None = None) -> ParseResult:
    ranking = [IntentScore(name, confidence) for name, confidence in scores]
    return ParseResult(ranking[0] if ranking else None, ranking, entities or [], model="fake-nlu.tar.gz")


# what the fake NLU makes of each message (anything else: chitchat)
PARSES: dict[str, ParseResult] = {
    "hello": parse(("greet", 0.95), ("goodbye", 0.02)),
    "where is order 4711": parse(
        ("order_status", 0.9), ("cancel_order", 0.05), entities=[{"entity": "order_id", "value": "4711"}]
    ),
    "what is my balance": parse(("balance", 0.9)),  # an intent with neither action nor response
    "break the action": parse(("broken", 0.9)),
    "hmm maybe": parse(("greet", 0.3), ("goodbye", 0.2)),
    "hi or bye": parse(("greet", 0.55), ("goodbye", 0.5)),
    "": parse(),
    "nothing at all": ParseResult(None, [], []),
    "do you ship kettles to norway": parse(("out_of_scope", 0.9)),
    "and to sweden": parse(("out_of_scope", 0.8)),
    "ship to sweden": parse(("out_of_scope", 0.8)),
    "kettle warranty": parse(("out_of_scope", 0.7)),
    "who won the world cup": parse(("out_of_scope", 0.9)),
    # out of scope to the NLU, but much of its ranking on small-talk intents: small talk, not a question
    "you are fired": parse(("out_of_scope", 0.55), ("chitchat", 0.3), ("goodbye", 0.1), ("order_status", 0.05)),
    KB_DOWN: parse(("out_of_scope", 0.9)),
}


class FakeNLU:
    def __init__(self, settings: Settings, serving: ServingState) -> None:
        self.serving = serving
        self.endpoints: list[str | None] = []  # the endpoint each parse was made with
        self.delay_s = 0.0

    async def parse(self, text: str) -> ParseResult:
        self.endpoints.append(self.serving.nlu_endpoint)
        await asyncio.sleep(self.delay_s)
        if text == NLU_DOWN:
            raise BackendUnavailable("the fake NLU is down")
        return PARSES.get(text, parse(("chitchat", 0.9), ("greet", 0.05)))

    async def health(self) -> Health:
        return Health(True, "fake")

    async def aclose(self) -> None:
        return None


@dataclass
class Script:
    """What the fake LLM does: write ``pieces``, or fail, or hang until cancelled."""

    pieces: list[str] = field(default_factory=lambda: ["I am ", "fine, ", "thanks!"])
    fail: bool = False
    hang: bool = False


class FakeLLM:
    def __init__(self, settings: Settings, serving: ServingState) -> None:
        self.script = Script()
        self.calls: list[tuple[str, list[ChatMessage]]] = []
        self.generations: list[Generation | None] = []
        self.cancelled = 0

    async def stream(
        self, messages: list[ChatMessage], model: str, usage: Usage, generation: Generation | None = None
    ) -> AsyncIterator[str]:
        self.calls.append((model, messages))
        self.generations.append(generation)
        if self.script.fail:
            raise BackendUnavailable("the fake LLM is down")
        try:
            if self.script.hang:
                await asyncio.sleep(3600)
            for piece in self.script.pieces:
                await asyncio.sleep(0)
                yield piece
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        usage.prompt_tokens, usage.completion_tokens = 12, len(self.script.pieces)

    async def health(self) -> Health:
        return Health(True, "fake")

    async def models(self) -> list[str]:
        return ["base"]

    async def aclose(self) -> None:
        return None


class FakeServer:
    """A `ModelServer` that serves whatever it is asked to (or refuses, like a server without adapters)."""

    kind = ModelKind.LLM

    def __init__(self, settings: Settings, serves_versions: bool = True) -> None:
        self.serves_versions = serves_versions
        self.served: list[str | None] = []
        self.down = False

    def launch(self, model: Path | None) -> ServiceSpec | None:
        return None

    async def health(self) -> Health:
        return Health(not self.down)

    async def serves(self, version: ModelVersion) -> bool:
        return version.version in self.served

    async def serve(self, version: ModelVersion | None, reroute: Reroute) -> None:
        if self.down:
            raise BackendUnavailable("the fake server is down")
        self.served.append(version.version if version else None)

    async def aclose(self) -> None:
        return None


class OrderStatus:
    async def run(self, context: ActionContext) -> ActionResult:
        order = context.slots.get("order_id")
        return ActionResult(f"Order {order} is on its way.", {"last_order": order})


class Broken:
    async def run(self, context: ActionContext) -> ActionResult:
        raise ZeroDivisionError("a bug in an action plugin")


class FakeEmbedder:
    """An `Embedder` for tests: each word is hashed to one of 384 dimensions (so texts that share words are
    similar and others are orthogonal), unit length."""

    name = "fake-bag-of-words"
    dimensions = 384

    def __init__(self, settings: Settings | None = None) -> None:
        self.calls = 0

    def embed(self, texts: list[str]) -> Any:
        import hashlib

        import numpy as np

        self.calls += 1
        vectors = np.zeros((len(texts), self.dimensions), dtype=np.float32)
        for row, text in enumerate(texts):
            if KB_DOWN in text:
                raise RuntimeError("the fake embedder failed")
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                if word not in STOP:
                    vectors[row, int(hashlib.md5(word.encode()).hexdigest(), 16) % self.dimensions] += 1.0
            norm = float(np.linalg.norm(vectors[row]))
            vectors[row] = vectors[row] / norm if norm else vectors[row]
        return vectors


STOP = frozenset({"a", "an", "and", "are", "do", "does", "how", "i", "is", "of", "the", "to", "what", "who", "you"})
