"""The SQL log of every conversation, message and piece of feedback, plus the model registry.

Tables are in ``tables``; the turn's hot path in ``Store``; the rest are plain functions of a
``Connection`` grouped by subject (``feedback``, ``registry``, ``locks``, ``runtime``,
``outbox``), run with
``Store.transaction``.
"""

from assistant.contracts import DuplicateMessage
from assistant.store import feedback, locks, outbox, registry, runtime
from assistant.store.store import AlreadyAnswered, ReplyRecord, Store, Turn, Understanding
from assistant.store.tables import Base

__all__ = [
    "AlreadyAnswered",
    "Base",
    "DuplicateMessage",
    "ReplyRecord",
    "Store",
    "Turn",
    "Understanding",
    "feedback",
    "locks",
    "outbox",
    "registry",
    "runtime",
]
