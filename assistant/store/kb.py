"""The knowledge base's tables: documents, their chunks (text + embedding), versions, and the two searches.

Plain functions of a ``Connection`` (run with ``Store.transaction``), one implementation per database behind
the same calls:

* keywords: SQLite's FTS5 (BM25) or Postgres full text (``ts_rank_cd`` on a generated ``tsvector``);
* dense: pgvector's HNSW index on Postgres; on SQLite a numpy scan of the float32 vectors, held in memory per
  knowledge-base version (``DenseIndex``). The stdlib ``sqlite3`` here cannot load extensions (so no
  sqlite-vec), and a scan of 600 chunks takes 0.08 ms, 20,000 chunks 9 ms (bench/kb_clapnq.py prints it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
from sqlalchemy import Connection, Float, delete, func, insert, literal, select, text, update

from assistant.contracts import AssistantError, Passage
from assistant.store.tables import Embedding, KBChunk, KBDocument, KBVersion, utcnow

documents_t = KBDocument.__table__
chunks_t = KBChunk.__table__
versions_t = KBVersion.__table__

WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "could",
        "do",
        "does",
        "did",
        "for",
        "from",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


class UnknownDocument(AssistantError, LookupError):
    pass


@dataclass(frozen=True)
class DocumentRow:
    id: int
    source: str
    title: str
    kind: str
    content_hash: str
    chars: int
    chunks: int
    added_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class NewChunk:
    title: str
    text: str
    content_hash: str
    embedding: Any  # float32 vector
    sentence_embeddings: bytes | None = None  # float32 rows, one per sentence (``matrix_bytes``)


def matrix_bytes(matrix: Any) -> bytes:
    """Sentence vectors as stored: float32 rows, row after row."""
    return np.ascontiguousarray(matrix, dtype=np.float32).tobytes()


def matrix_of(blob: bytes | None, dimensions: int) -> np.ndarray | None:
    """The stored sentence vectors back as a (sentences, dimensions) matrix (None: none stored)."""
    if blob is None or dimensions <= 0 or len(blob) % (4 * dimensions):
        return None
    return np.frombuffer(blob, dtype=np.float32).reshape(-1, dimensions)


@dataclass(frozen=True)
class VersionRow:
    version: str
    content_hash: str
    documents: int
    chunks: int
    embedder: str
    change: dict[str, Any]
    created_at: datetime


def list_documents(conn: Connection) -> list[DocumentRow]:
    count = select(func.count()).select_from(chunks_t).where(chunks_t.c.document_id == documents_t.c.id)
    rows = conn.execute(select(documents_t, count.scalar_subquery().label("chunks")).order_by(documents_t.c.source))
    return [DocumentRow(**{name: getattr(row, name) for name in DocumentRow.__dataclass_fields__}) for row in rows]


def document_hashes(conn: Connection) -> dict[str, str]:
    """source -> content hash of every document (what `kb add` compares a file with)."""
    return {
        row.source: row.content_hash for row in conn.execute(select(documents_t.c.source, documents_t.c.content_hash))
    }


def put_document(
    conn: Connection, source: str, title: str, kind: str, content_hash: str, chars: int, chunks: Sequence[NewChunk]
) -> None:
    """Add a document, or replace one from the same source: its old chunks go, the new ones come."""
    now = utcnow()
    existing = conn.scalar(select(documents_t.c.id).where(documents_t.c.source == source))
    if existing is None:
        document_id = conn.execute(
            insert(documents_t).values(
                source=source,
                title=title,
                kind=kind,
                content_hash=content_hash,
                chars=chars,
                added_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
    else:
        document_id = existing
        conn.execute(delete(chunks_t).where(chunks_t.c.document_id == document_id))
        conn.execute(
            update(documents_t)
            .where(documents_t.c.id == document_id)
            .values(title=title, kind=kind, content_hash=content_hash, chars=chars, updated_at=now)
        )
    if chunks:
        conn.execute(
            insert(chunks_t),
            [
                {"document_id": document_id, "position": i, "title": c.title, "text": c.text,
                 "content_hash": c.content_hash, "embedding": c.embedding,
                 "sentence_embeddings": c.sentence_embeddings}
                for i, c in enumerate(chunks)
            ],
        )  # fmt: skip


def remove_document(conn: Connection, source: str) -> None:
    document_id = conn.scalar(select(documents_t.c.id).where(documents_t.c.source == source))
    if document_id is None:
        raise UnknownDocument(f"the knowledge base has no document {source!r} (see `assistant kb list`)")
    conn.execute(delete(chunks_t).where(chunks_t.c.document_id == document_id))
    conn.execute(delete(documents_t).where(documents_t.c.id == document_id))


def record_version(conn: Connection, embedder: str, change: dict[str, Any]) -> VersionRow:
    """Register the knowledge base as it now is (``kb-0001``, ``kb-0002``, ...)."""
    digest = hashlib.sha256()
    for (chunk_hash,) in conn.execute(select(chunks_t.c.content_hash).order_by(chunks_t.c.id)):
        digest.update(chunk_hash.encode())
    count = conn.scalar(select(func.count()).select_from(versions_t)) or 0
    row = {
        "version": f"kb-{count + 1:04d}",
        "content_hash": digest.hexdigest(),
        "documents": conn.scalar(select(func.count()).select_from(documents_t)) or 0,
        "chunks": conn.scalar(select(func.count()).select_from(chunks_t)) or 0,
        "embedder": embedder,
        "change": change,
        "created_at": utcnow(),
    }
    conn.execute(insert(versions_t).values(**row))
    return VersionRow(**row)


def current_version(conn: Connection) -> VersionRow | None:
    row = conn.execute(select(versions_t).order_by(versions_t.c.id.desc()).limit(1)).first()
    return None if row is None else VersionRow(**{name: getattr(row, name) for name in VersionRow.__dataclass_fields__})


def versions(conn: Connection) -> list[VersionRow]:
    rows = conn.execute(select(versions_t).order_by(versions_t.c.id))
    return [VersionRow(**{name: getattr(row, name) for name in VersionRow.__dataclass_fields__}) for row in rows]


def all_chunks(conn: Connection, without_sentences: bool = False) -> list[tuple[int, str, str]]:
    """(chunk id, title, text) of every chunk (what `kb reindex` embeds again), or of those that have no
    sentence vectors yet (indexed before migration 0007)."""
    query = select(chunks_t.c.id, chunks_t.c.title, chunks_t.c.text).order_by(chunks_t.c.id)
    if without_sentences:
        query = query.where(chunks_t.c.sentence_embeddings.is_(None))
    return [tuple(row) for row in conn.execute(query)]


def set_embeddings(conn: Connection, vectors: dict[int, Any], sentence_vectors: dict[int, bytes]) -> None:
    for chunk_id, sentences in sentence_vectors.items():
        values: dict[str, Any] = {"sentence_embeddings": sentences}
        if chunk_id in vectors:
            values["embedding"] = vectors[chunk_id]
        conn.execute(update(chunks_t).where(chunks_t.c.id == chunk_id).values(**values))


def terms(query: str) -> list[str]:
    """The query's words for keyword search: lower case, no stop words, each once."""
    seen: dict[str, None] = {}
    for word in WORD.findall(query.lower()):
        if word not in STOPWORDS and (len(word) > 1 or word.isdigit()):
            seen.setdefault(word, None)
    return list(seen)


def keyword_search(conn: Connection, query: str, k: int) -> list[tuple[int, float]]:
    """(chunk id, score) best first, any of the query's words matching; higher scores are better."""
    words = terms(query)
    if not words:
        return []
    if conn.dialect.name == "postgresql":
        tsquery = " | ".join(f"'{w}'" for w in words)
        rows = conn.execute(
            text(
                "SELECT id, ts_rank_cd(tsv, q) AS score FROM kb_chunks, to_tsquery('english', :q) q "
                "WHERE tsv @@ q ORDER BY score DESC, id LIMIT :k"
            ),
            {"q": tsquery, "k": k},
        )
    else:
        match = " OR ".join(f'"{w}"' for w in words)
        rows = conn.execute(
            text(
                "SELECT rowid, -bm25(kb_chunks_fts) AS score FROM kb_chunks_fts WHERE kb_chunks_fts MATCH :q "
                "ORDER BY score DESC, rowid LIMIT :k"
            ),
            {"q": match, "k": k},
        )
    return [(int(chunk_id), float(score)) for chunk_id, score in rows]


def dense_search_postgres(conn: Connection, vector: Any, k: int) -> list[tuple[int, float]]:
    """(chunk id, cosine similarity) through pgvector's HNSW index (``<=>`` is the cosine distance)."""
    query = literal(np.asarray(vector, dtype=np.float32), Embedding())
    distance = chunks_t.c.embedding.op("<=>", return_type=Float())(query)
    rows = conn.execute(select(chunks_t.c.id, distance).order_by(distance).limit(k))
    return [(int(chunk_id), 1.0 - float(d)) for chunk_id, d in rows]


class DenseIndex:
    """SQLite's dense search: every vector in one float32 matrix, loaded again when the KB version changes."""

    def __init__(self) -> None:
        self.version: str | None = None
        self.ids = np.zeros(0, dtype=np.int64)
        self.matrix = np.zeros((0, 0), dtype=np.float32)

    def search(self, conn: Connection, version: str | None, vector: Any, k: int) -> list[tuple[int, float]]:
        if conn.dialect.name == "postgresql":
            return dense_search_postgres(conn, vector, k)
        if version != self.version:
            rows = conn.execute(select(chunks_t.c.id, chunks_t.c.embedding).order_by(chunks_t.c.id)).all()
            self.ids = np.array([row[0] for row in rows], dtype=np.int64)
            self.matrix = np.stack([row[1] for row in rows]) if rows else np.zeros((0, 0), dtype=np.float32)
            self.version = version
        if not len(self.ids):
            return []
        scores = self.matrix @ np.asarray(vector, dtype=np.float32)
        top = np.argsort(-scores, kind="stable")[:k]
        return [(int(self.ids[i]), float(scores[i])) for i in top]


def passages(conn: Connection, ids: Sequence[int]) -> dict[int, Passage]:
    """The chunks with these ids, with their document's source (scores left for the caller to set)."""
    if not ids:
        return {}
    rows = conn.execute(
        select(chunks_t.c.id, documents_t.c.source, chunks_t.c.title, chunks_t.c.text, chunks_t.c.position)
        .join(documents_t, documents_t.c.id == chunks_t.c.document_id)
        .where(chunks_t.c.id.in_(list(ids)))
    )
    return {
        row.id: Passage(chunk_id=row.id, source=row.source, title=row.title, text=row.text, position=row.position)
        for row in rows
    }
