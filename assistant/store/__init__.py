"""The SQL log of every conversation, message and piece of feedback."""

from assistant.store.store import Store, Turn
from assistant.store.tables import Base, Conversation, Feedback, Message

__all__ = ["Base", "Conversation", "Feedback", "Message", "Store", "Turn"]
