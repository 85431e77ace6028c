"""Few-shot examples for small talk: the curated exchanges closest to a message go into the LLM's prompt, before
the conversation, as earlier turns. A 135M model copies the voice and length of replies it was just shown far
better than it follows a persona description (measured in docs/llm-replies.md, "Examples in the prompt").

The exchanges are the bot's own curated words: ``persona_examples.yml`` and the replies of its small-talk
retrieval intents (``utter_chitchat/<topic>``) with a few of their training examples, never an evaluation set."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from assistant.config import Settings
from assistant.contracts import Embedder
from assistant.domain import Domain

log = logging.getLogger(__name__)

PER_TOPIC = 3  # training examples of each curated topic the index keeps (their reply is the same)


@dataclass(frozen=True)
class Exchange:
    message: str
    reply: str


def curated_exchanges(bot_dir: Path, domain: Domain, retrieval_intents: Collection[str]) -> list[Exchange]:
    """The persona's written exchanges, and for each topic of the small-talk retrieval intents (those named in
    ``retrieval_intents``) a few of its examples with its reply."""
    found: list[Exchange] = []
    persona = bot_dir / "persona_examples.yml"
    if persona.is_file():
        for item in (yaml.safe_load(persona.read_text()) or {}).get("examples") or []:
            if isinstance(item, dict) and item.get("message") and item.get("reply"):
                found.append(Exchange(str(item["message"]), str(item["reply"])))
    for path in sorted((bot_dir / "data").rglob("*.yml")):
        data = yaml.safe_load(path.read_text()) or {}
        for block in data.get("nlu") or [] if isinstance(data, dict) else []:
            intent = str(block.get("intent") or "") if isinstance(block, dict) else ""
            if "/" not in intent or intent.split("/", 1)[0] not in retrieval_intents:
                continue
            reply = domain.render(f"utter_{intent}", {})
            if not reply:
                continue
            lines = str(block.get("examples") or "").splitlines()
            examples = [_plain(line) for line in lines if line.strip().startswith("- ")]
            found.extend(Exchange(text, reply) for text in examples[:PER_TOPIC] if text)
    return found


def _plain(line: str) -> str:
    """An example line as its text: no list dash, Rasa's entity markup [text](entity) as text."""
    return re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", line.strip().removeprefix("- ")).strip()


class ExampleFinder:
    """The ``count`` exchanges closest to a message (cosine of the knowledge base's encoder), those at least
    ``floor`` close, each reply once. The exchanges are embedded on first use."""

    def __init__(self, exchanges: Sequence[Exchange], embedder: Embedder, count: int, floor: float) -> None:
        self.exchanges = list(exchanges)
        self.embedder = embedder
        self.count = count
        self.floor = floor
        self._vectors: np.ndarray | None = None
        self._lock = asyncio.Lock()

    async def closest(self, text: str) -> list[Exchange]:
        """The examples for ``text``; none when the encoder fails (the reply is still written, without them)."""
        if self.count <= 0 or not self.exchanges:
            return []
        try:
            async with self._lock:
                if self._vectors is None:
                    texts = [e.message for e in self.exchanges]
                    vectors = await asyncio.to_thread(self.embedder.embed, texts)
                    self._vectors = np.asarray(vectors, dtype=np.float32)
            query = np.asarray(await asyncio.to_thread(self.embedder.embed, [text]), dtype=np.float32)[0]
        except Exception as exc:  # any encoder failure: answer without examples
            log.warning("no curated examples for the prompt: the encoder failed (%s)", exc)
            return []
        scores = self._vectors @ query
        chosen: list[Exchange] = []
        for index in np.argsort(-scores):
            exchange = self.exchanges[int(index)]
            if float(scores[index]) < self.floor or len(chosen) == self.count:
                break
            if exchange.reply not in {c.reply for c in chosen}:
                chosen.append(exchange)
        return chosen[::-1]  # the closest last, next to the message


def example_finder(settings: Settings, domain: Domain, embedder: Embedder | None) -> ExampleFinder | None:
    """The bot's finder as the settings ask for it (``llm.examples``); None without an encoder or examples."""
    if embedder is None or settings.llm.examples <= 0:
        return None
    exchanges = curated_exchanges(settings.bot_dir, domain, settings.kb.smalltalk_intents)
    return ExampleFinder(exchanges, embedder, settings.llm.examples, settings.llm.example_floor) if exchanges else None
