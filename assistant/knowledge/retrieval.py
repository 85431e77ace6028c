"""Hybrid retrieval from the knowledge base: keyword and dense searches fused into one ranking.

The query is the message, and, when the conversation has earlier user messages, also the message with them
(so "and to Sweden?" after "do you ship to Norway?" finds the shipping page). Each query runs a keyword and
a dense search; the lists are fused by reciprocal rank (``kb.fusion: rrf``) or by weighted normalised scores
(``weighted``), chosen on the ClapNQ tuning part (bench/kb_clapnq.py). The evidence floor (``kb.min_score``)
is on the answerability score (``answerability``): the top passage's cosine to the query with that of the
closest sentence (each chunk's sentences are embedded when it is indexed).

``LangChainRetriever`` exposes the same search as a LangChain ``BaseRetriever``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from sqlalchemy import Connection, select

from assistant.config import KBSettings
from assistant.contracts import Embedder, Passage, Retrieval
from assistant.store import Store, kb
from assistant.store.tables import KBChunk

Ranking = list[tuple[int, float]]  # (chunk id, score), best first


def rrf(rankings: Sequence[Ranking], k: int = 60) -> dict[int, float]:
    """Reciprocal rank fusion: each list adds 1 / (k + rank) for every id it holds (rank from 1)."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, (chunk_id, _) in enumerate(ranking, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return fused


def weighted(keyword: Sequence[Ranking], dense: Sequence[Ranking], dense_weight: float) -> dict[int, float]:
    """Weighted scores: each keyword list divided by its best score (so 0..1), dense cosines as they are,
    averaged over the lists of each kind, then ``dense_weight`` * dense + (1 - it) * keyword."""

    def mean_of(rankings: Sequence[Ranking], normalise: bool) -> dict[int, float]:
        total: dict[int, float] = {}
        for ranking in rankings:
            best = max((score for _, score in ranking), default=0.0)
            for chunk_id, score in ranking:
                value = score / best if normalise and best > 0 else score
                total[chunk_id] = total.get(chunk_id, 0.0) + value / len(rankings)
        return total

    keywords, denses = mean_of(keyword, True), mean_of(dense, False)
    return {
        chunk_id: dense_weight * denses.get(chunk_id, 0.0) + (1 - dense_weight) * keywords.get(chunk_id, 0.0)
        for chunk_id in keywords.keys() | denses.keys()
    }


def queries(text: str, context: Sequence[str], turns: int) -> list[str]:
    """The message alone, then the message after the last ``turns`` earlier user messages (if any)."""
    earlier = [c for c in context if c.strip()][-turns:] if turns > 0 else []
    return [text] + ([" ".join([*earlier, text])] if earlier else [])


class HybridRetriever:
    """Retrieval over the store's knowledge base with the configured embedder (the `Retriever` of a turn)."""

    def __init__(self, settings: KBSettings, store: Store, embedder: Embedder) -> None:
        self.settings = settings
        self.store = store
        self.embedder = embedder
        self.dense_index = kb.DenseIndex()

    async def retrieve(self, text: str, context: Sequence[str] = (), top_k: int | None = None) -> Retrieval:
        started = time.perf_counter()
        version = await self.store.transaction(kb.current_version)
        if version is None or version.chunks == 0:  # nothing to search: no embedding either
            return Retrieval(text, [], version.version if version else None, 0.0, False)
        texts = queries(text, context, self.settings.context_turns)
        vectors = await asyncio.to_thread(self.embedder.embed, texts)  # onnxruntime releases the GIL
        result = await self.store.transaction(lambda conn: self.search(conn, texts, vectors, top_k))
        return replace(result, latency_ms=(time.perf_counter() - started) * 1000)

    def search(self, conn: Connection, texts: list[str], vectors: Any, top_k: int | None = None) -> Retrieval:
        """The searches and the fusion, in one transaction (``texts[0]`` is the message itself)."""
        cfg = self.settings
        version = kb.current_version(conn)
        name = version.version if version else None
        keyword = [kb.keyword_search(conn, t, cfg.candidates) for t in texts]
        dense = [self.dense_index.search(conn, name, v, cfg.candidates) for v in vectors]
        if cfg.fusion == "weighted":
            fused = weighted(keyword, dense, cfg.dense_weight)
        else:  # rrf, or one kind of search alone (to compare with)
            fused = rrf({"rrf": [*keyword, *dense], "keyword": keyword, "dense": dense}[cfg.fusion], cfg.rrf_k)
        best = sorted(fused, key=lambda chunk_id: (-fused[chunk_id], chunk_id))[: top_k or cfg.top_k]
        found = kb.passages(conn, best)
        # the passage to the fullest query (with context, if any); its sentences to the message itself: the
        # conversation may be about the passage, but one of its sentences must answer this message
        cosines = _cosines(conn, best, vectors[-1], vectors[0])
        keyword_scores = {chunk_id: score for ranking in keyword for chunk_id, score in reversed(ranking)}
        passages = [
            replace(found[i], score=fused[i], dense=cosines[i][0] if i in cosines else None,
                    keyword=keyword_scores.get(i),
                    sentences=cosines[i][1] if i in cosines else ())
            for i in best if i in found
        ]  # fmt: skip
        score = answerability(passages[: cfg.top_k], cfg.sentence_weight)
        return Retrieval(texts[-1], passages, name, 0.0, score >= cfg.min_score, round(score, 4))


def answerability(passages: Sequence[Passage], sentence_weight: float) -> float:
    """How likely the passages answer the message: the top passage's cosine to the query, and the cosine of
    the sentence closest to it among all the passages, weighted (``kb.sentence_weight``). The answer to a
    question is usually one or two sentences, so the best sentence tells an on-topic passage that answers
    from one that does not better than the passage as a whole (on the ClapNQ tuning part the two together
    separate answerable from unanswerable questions with an AUC of 0.89; the passage's cosine alone 0.86,
    BM25 about 0.71). Passages without sentence vectors count with their cosine alone."""
    if not passages:
        return 0.0
    top = passages[0].dense or 0.0
    sentence_scores = [p.best_sentence for p in passages if p.best_sentence is not None]
    if not sentence_scores:
        return top
    return (1 - sentence_weight) * top + sentence_weight * max(sentence_scores)


def _cosines(
    conn: Connection, ids: list[int], vector: Any, message_vector: Any
) -> dict[int, tuple[float, tuple[float, ...]]]:
    """Each chunk's cosine to the query, and each of its sentences' to the message (empty: no sentence vectors)."""
    if not ids:
        return {}
    chunks = KBChunk.__table__
    rows = conn.execute(
        select(chunks.c.id, chunks.c.embedding, chunks.c.sentence_embeddings).where(chunks.c.id.in_(ids))
    )
    query, message = np.asarray(vector, dtype=np.float32), np.asarray(message_vector, dtype=np.float32)
    found = {}
    for chunk_id, embedding, blob in rows:
        matrix = kb.matrix_of(blob, len(query))
        per_sentence = tuple(round(float(x), 4) for x in matrix @ message) if matrix is not None else ()
        found[chunk_id] = (float(np.dot(np.asarray(embedding, dtype=np.float32), query)), per_sentence)
    return found


class LangChainRetriever(BaseRetriever):
    """The knowledge base as a LangChain retriever: ``await LangChainRetriever(retriever=r).ainvoke("...")``
    gives Documents with the chunk id, source, title and scores in their metadata."""

    retriever: Any  # HybridRetriever (Any: it is not a pydantic model)
    top_k: int | None = None

    async def _aget_relevant_documents(
        self, query: str, *, run_manager: AsyncCallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        result: Retrieval = await self.retriever.retrieve(query, top_k=self.top_k)
        return [_document(p, result.kb_version) for p in result.passages]

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[LCDocument]:
        result: Retrieval = asyncio.run(self.retriever.retrieve(query, top_k=self.top_k))  # outside an event loop
        return [_document(p, result.kb_version) for p in result.passages]


def _document(passage: Passage, kb_version: str | None) -> LCDocument:
    metadata = {
        "chunk_id": passage.chunk_id, "source": passage.source, "title": passage.title, "position": passage.position,
        "score": passage.score, "dense": passage.dense, "keyword": passage.keyword, "kb_version": kb_version,
    }  # fmt: skip
    return LCDocument(page_content=passage.text, metadata=metadata)
