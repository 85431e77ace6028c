"""What the channels that answer out of band (Slack, Telegram, REST callbacks) share: acknowledge at once and
answer later, and read a platform's Retry-After."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

from assistant.contracts import Accepted, DuplicateMessage, IncomingMessage, Turns


async def accept_and_answer_later(
    turns: Turns,
    message: IncomingMessage,
    while_answering: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
) -> Accepted | None:
    """Store the message and answer it in the background; None when it was stored before (a platform's retry)."""
    try:
        accepted = await turns.accept(message)
    except DuplicateMessage:
        return None
    turns.answer_later(message, accepted, while_answering)
    return accepted


def retry_after_s(header: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is not used by Slack or webhooks: None)."""
    return float(header) if header and header.strip().isdigit() else None
