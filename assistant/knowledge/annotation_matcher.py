"""Which annotation, if any, answers a message: the closest annotated question by the knowledge base's sentence
encoder, when its cosine reaches ``kb.annotation_threshold`` (chosen on the tuning part: docs/llm-replies.md).

Questions are embedded once and kept by id; a new or edited annotation is embedded on the next message."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

from assistant.contracts import Embedder
from assistant.store import Store
from assistant.store import annotations as stored


@dataclass(frozen=True)
class Match:
    id: int
    answer: str
    score: float

    @property
    def name(self) -> str:
        """What the reply records as ``answered_by``."""
        return f"annotation-{self.id}"


class AnnotationMatcher:
    def __init__(self, store: Store, embedder: Embedder, threshold: float) -> None:
        self.store = store
        self.embedder = embedder
        self.threshold = threshold
        self._vectors: dict[tuple[int, str], np.ndarray] = {}

    async def match(self, text: str) -> Match | None:
        rows = await self.store.transaction(stored.enabled)
        if not rows:
            return None
        missing = [(i, q) for i, q, _ in rows if (i, q) not in self._vectors]
        texts = [q for _, q in missing] + [text]
        vectors = await asyncio.to_thread(self.embedder.embed, texts)  # onnxruntime releases the GIL
        for key, vector in zip(missing, vectors[:-1], strict=True):
            self._vectors[key] = np.asarray(vector, dtype=np.float32)
        query = np.asarray(vectors[-1], dtype=np.float32)
        scores = np.stack([self._vectors[(i, q)] for i, q, _ in rows]) @ query
        best = int(np.argmax(scores))
        if float(scores[best]) < self.threshold:
            return None
        found = Match(rows[best][0], rows[best][2], float(scores[best]))
        await self.store.transaction(lambda conn: stored.hit(conn, found.id))
        return found
