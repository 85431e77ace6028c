"""Tables of the log. Schema changes go through Alembic (assistant/store/migrations)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    JSON,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    type_annotation_map = {
        dict[str, Any]: JSON(none_as_null=True),
        list[Any]: JSON(none_as_null=True),
        datetime: DateTime(timezone=True),
    }


class Conversation(Base):
    """One sender on one channel; ``slots`` remembers entities across turns for templated replies."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("channel", "sender_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(String(255))
    slots: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Message(Base):
    """A user message (with what the NLU and the router made of it) or a bot reply (with how it was made).

    Both rows of a turn carry ``route`` and ``reason``; the bot row points at its user row (``reply_to_id``).
    """

    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_conversation", "conversation_id", "id"),
        # one reply per user message, even when a recovered turn races the original one
        Index("ux_messages_reply_to_id", "reply_to_id", unique=True),
        Index("ux_messages_external_id", "external_id", unique=True),
        Index("ix_messages_created_at", "created_at"),  # retention
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(16))  # "user" | "bot"
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    metadata_: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON(none_as_null=True), default=None)
    # user rows from channels that retry (Slack event_id, Telegram update_id): a retry is not a new message
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # user rows: the NLU result
    intent: Mapped[str | None] = mapped_column(String(128), default=None)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    ranking: Mapped[list[Any] | None] = mapped_column(default=None)
    entities: Mapped[list[Any] | None] = mapped_column(default=None)
    nlu_model: Mapped[str | None] = mapped_column(String(255), default=None)
    # both rows: the routing decision
    route: Mapped[str | None] = mapped_column(String(16), default=None)  # "intent" | "llm"
    reason: Mapped[str | None] = mapped_column(String(64), default=None)
    # bot rows: how the reply was made
    reply_to_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), default=None)
    # the response template (utter_*), the action (action_*) or the LLM model/adapter that wrote the reply
    answered_by: Mapped[str | None] = mapped_column(String(255), default=None)
    prompt: Mapped[list[Any] | None] = mapped_column(default=None)
    prompt_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    completion_tokens: Mapped[int | None] = mapped_column(Integer, default=None)
    latency_ms: Mapped[float | None] = mapped_column(Float, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    # LLM replies: sampling settings, history kept, which guards acted (assistant.replies.writer.Record)
    generation: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    # bot rows answered from the knowledge base: kb version, query, passages (chunk ids, scores), citations
    retrieval: Mapped[dict[str, Any] | None] = mapped_column(default=None)


class Feedback(Base):
    """A rating or a corrected reply for one bot message, and who gave it.

    ``source``: ``reviewer`` (admin API, CLI), ``trusted`` (a channel listed in ``feedback.trusted_channels``)
    or ``anonymous`` (any other channel user). ``review``: ``accepted`` for reviewers and trusted channels,
    else ``pending`` until a reviewer ``approved`` (maybe with ``reviewed_correction``) or ``rejected`` it.
    Only accepted and approved rows are training data.
    """

    __tablename__ = "feedback"
    __table_args__ = (
        Index("ix_feedback_sender", "channel", "sender_id", "created_at"),
        Index("ix_feedback_review", "review"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), index=True)
    rating: Mapped[str | None] = mapped_column(String(8), default=None)  # "up" | "down"
    correction: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str] = mapped_column(String(16), default="anonymous", server_default="anonymous")
    channel: Mapped[str | None] = mapped_column(String(64), default=None)
    sender_id: Mapped[str | None] = mapped_column(String(255), default=None)
    review: Mapped[str] = mapped_column(String(16), default="pending", server_default="pending")
    reviewed_correction: Mapped[str | None] = mapped_column(Text, default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(default=None)


class Label(Base):
    """The intent (and entities) a person says a user message has: training data for the NLU model."""

    __tablename__ = "labels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    intent: Mapped[str] = mapped_column(String(128))
    entities: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Annotation(Base):
    """A written answer to a question, given before the LLM to messages close enough to ``question`` (Dify's
    annotation replies): from a reply a reviewer approved or wrote (``feedback_id``), or imported. Anonymous
    suggestions become one only through a reviewer. ``hits``: how many turns it answered."""

    __tablename__ = "annotations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    question: Mapped[str] = mapped_column(Text)
    answer: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(16))  # "review" | "import"
    feedback_id: Mapped[int | None] = mapped_column(ForeignKey("feedback.id", ondelete="SET NULL"), default=None)
    enabled: Mapped[bool] = mapped_column(default=True)
    hits: Mapped[int] = mapped_column(Integer, default=0)
    last_hit_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ModelVersion(Base):
    """The model registry: every NLU model and LoRA adapter ever trained, and which one is served.

    ``status`` is ``training`` while it is made, then ``candidate`` (evaluated, waiting), ``active``
    (served; at most one per kind), ``rejected`` (not better), ``retired`` (was active) or ``failed``.
    """

    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_kind_status", "kind", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))  # "nlu" | "llm"
    version: Mapped[str] = mapped_column(String(64), unique=True)
    parent: Mapped[str | None] = mapped_column(String(64), default=None)
    path: Mapped[str | None] = mapped_column(Text, default=None)
    data_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    config_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    metrics: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    status: Mapped[str] = mapped_column(String(16))
    report: Mapped[str | None] = mapped_column(Text, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    activated_at: Mapped[datetime | None] = mapped_column(default=None)


class TrainingRun(Base):
    """One ``assistant retrain``: what it was asked, how it ended, where its report is."""

    __tablename__ = "training_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(16))  # running | finished | failed | skipped
    summary: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    report: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime] = mapped_column(default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Lock(Base):
    """A named lock held in the database, so that it holds across processes and app replicas.

    The holder refreshes ``heartbeat_at``; a lock whose heartbeat stopped is taken over.
    """

    __tablename__ = "locks"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    acquired_at: Mapped[datetime] = mapped_column(default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(default=utcnow)


class RuntimeSetting(Base):
    """Settings every app replica follows while it runs, changed by the CLI (e.g. which Rasa server to
    parse with while the main one loads a new model). Replicas poll it every second."""

    __tablename__ = "runtime_settings"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[dict[str, Any] | None] = mapped_column(default=None)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Outbox(Base):
    """A bot reply waiting to be delivered by its channel (Slack, Telegram, REST callback).

    Written in the same transaction as the reply, so a stored reply is never lost; the delivery worker
    retries it with exponential backoff until the channel accepts it. ``key`` is the idempotency key
    every attempt carries. ``state`` is what earlier attempts got done (e.g. parts of a long message).
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    key: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16))  # pending | delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[dict[str, Any]] = mapped_column(default=dict)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(default=None)


EMBEDDING_DIMENSIONS = 384  # all-MiniLM-L6-v2; another embedder with other dimensions needs a migration on Postgres


class Embedding(TypeDecorator[Any]):
    """A float32 vector: pgvector's ``vector`` on Postgres, raw float32 bytes on SQLite."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> Any:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(Vector(EMBEDDING_DIMENSIONS))
        return dialect.type_descriptor(LargeBinary())

    def process_bind_param(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        vector = np.asarray(value, dtype=np.float32)
        return vector if dialect.name == "postgresql" else vector.tobytes()

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, bytes | memoryview):
            return np.frombuffer(bytes(value), dtype=np.float32)
        return np.asarray(value, dtype=np.float32)


class KBDocument(Base):
    """A document of the knowledge base, by its source (path or URL). ``content_hash`` tells a changed file."""

    __tablename__ = "kb_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(1024), unique=True)
    title: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(16))  # markdown | html | text | pdf
    content_hash: Mapped[str] = mapped_column(String(64))
    chars: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class KBChunk(Base):
    """A chunk of a document with its embedding. Keyword search: FTS5 (SQLite) or a tsvector column (Postgres),
    both made by migration 0006."""

    __tablename__ = "kb_chunks"
    __table_args__ = (Index("ix_kb_chunks_document", "document_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("kb_documents.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(512))
    text: Mapped[str] = mapped_column(Text)
    content_hash: Mapped[str] = mapped_column(String(64))
    embedding: Mapped[Any] = mapped_column(Embedding())
    # float32 rows, one per sentence of ``text`` (``grounding.sentences``), migration 0007; None: not yet made
    sentence_embeddings: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)


class KBVersion(Base):
    """Each change to the knowledge base is a version (``kb-0003``): a turn records the one it answered from."""

    __tablename__ = "kb_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[str] = mapped_column(String(32), unique=True)
    content_hash: Mapped[str] = mapped_column(String(64))  # of every chunk's hash, in order
    documents: Mapped[int] = mapped_column(Integer)
    chunks: Mapped[int] = mapped_column(Integer)
    embedder: Mapped[str] = mapped_column(String(255))
    change: Mapped[dict[str, Any]] = mapped_column(default=dict)  # added / replaced / removed sources
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
