"""What the channels that answer out of band (Slack, Telegram, REST callbacks) share: acknowledge at once and
answer later, read a platform's Retry-After, name a reply's sources, and read a response's image."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any
from urllib.parse import unquote_to_bytes

from assistant.contracts import Accepted, Citation, DuplicateMessage, IncomingMessage, Turns

PLATFORM_REFUSALS: dict[int | str, dict[str, Any]] = {
    400: {"description": "the body is not the platform's JSON"},
    401: {"description": "the request is not signed (or not with our secret)"},
    413: {"description": "the body or the message is too large"},
    422: {"description": "a message no channel may store (the reason is in `message`)"},
}


async def accept_and_answer_later(
    turns: Turns,
    message: IncomingMessage,
    while_answering: Callable[[], AbstractAsyncContextManager[Any]] | None = None,
) -> Accepted | None:
    """Store the message and answer it in the background; None when it was stored before (a platform's retry).
    These channels are never refused for load: every message is stored and answered in order as the backends'
    lines move. A message no channel may take (``assistant.turn.inputs``, checked by ``accept``) is a 4xx and is
    not stored."""
    try:
        accepted = await turns.accept(message)
    except DuplicateMessage:
        return None
    turns.answer_later(message, accepted, while_answering)
    return accepted


def retry_after_s(header: str | None) -> float | None:
    """A Retry-After header in seconds (the HTTP-date form is not used by Slack or webhooks: None)."""
    return float(header) if header and header.strip().isdigit() else None


def source_name(citation: Citation) -> str:
    """A URL as it is (chat apps make it a link); a file by its name (its path means nothing to a user)."""
    if citation.source.startswith(("http://", "https://")):
        return citation.source
    return citation.source.replace("\\", "/").rsplit("/", 1)[-1]


def sources_text(citations: list[Citation]) -> str:
    """The sources as plain lines under a reply: ``[1] Shipping and delivery: shipping.md``."""
    return "Sources:\n" + "\n".join(f"[{c.n}] {c.title}: {source_name(c)}" for c in citations)


# what chat platforms show as a photo (Telegram's sendPhoto takes these; SVG is not a photo there)
PHOTO_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp")


def web_image(image: str | None) -> bool:
    """A response's image that a platform can fetch itself (Slack's image block, Telegram by URL): http(s)."""
    return bool(image) and str(image).startswith(("https://", "http://"))


def data_image(image: str | None) -> tuple[str, bytes] | None:
    """A ``data:`` image as (media type, bytes), for platforms that take uploads; None if it is not one or does
    not decode."""
    if not image or not image.startswith("data:") or "," not in image:
        return None
    header, _, data = image[5:].partition(",")
    media, *params = header.split(";")
    try:
        raw = base64.b64decode(data, validate=True) if "base64" in params else unquote_to_bytes(data)
    except (binascii.Error, ValueError):
        return None
    return media.strip().lower() or "text/plain", raw
