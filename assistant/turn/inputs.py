"""What every channel checks in a message before it is stored: each failure is an `InvalidInput` (a 4xx
with a sentence), never a database error or a 500 later on."""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from assistant.config import LimitsSettings
from assistant.contracts import IncomingMessage, InvalidInput
from assistant.store.tables import Message

EXTERNAL_ID_CHARS: int = Message.__table__.c.external_id.type.length  # type: ignore[attr-defined]
MAX_ROW_ID = 2**31 - 1  # ids are PostgreSQL integers: a larger one is a 404, never a database error
# Some text that is not white space, the same set for Python's `re` and the JSON Schema (ECMA) regex the
# OpenAPI schema states: the two disagree on U+001C-U+001F, U+0085 and U+FEFF, so those are named.
NOT_BLANK = r"[^\s\u001c-\u001f\u0085\ufeff]"
_NOT_BLANK = re.compile(NOT_BLANK)


def blank(value: str) -> bool:
    return _NOT_BLANK.search(value) is None


def check_text(value: str, what: str) -> None:
    """Text the database and every client can hold: no NUL characters (PostgreSQL refuses them) and no lone
    surrogates (JSON can carry ``\\ud800``, UTF-8 cannot)."""
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid Unicode (it holds a lone surrogate at position {exc.start})") from exc


def check_metadata(metadata: dict[str, Any] | None, limits: LimitsSettings) -> None:
    if metadata is None:
        return
    depth = _depth(metadata, limits.max_metadata_depth)
    if depth > limits.max_metadata_depth:
        raise InvalidInput(f"metadata is nested deeper than {limits.max_metadata_depth} levels")
    try:
        encoded = json.dumps(metadata, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as exc:  # NaN/Infinity (e.g. 1e400), which JSON columns refuse
        raise InvalidInput("metadata holds a number JSON cannot store (too large, or not a number)") from exc
    except UnicodeEncodeError as exc:
        raise InvalidInput("metadata is not valid Unicode (it holds a lone surrogate)") from exc
    if "\\u0000" in encoded.decode():
        raise InvalidInput("metadata must not contain NUL characters")
    if len(encoded) > limits.max_metadata_bytes:
        raise InvalidInput(
            f"metadata is {len(encoded)} bytes as JSON; the limit is {limits.max_metadata_bytes}", status=413
        )


def _depth(value: Any, stop: int) -> int:
    """Nesting depth, without recursion (and no deeper than ``stop + 1``)."""
    deepest, level = 0, [value]
    while level and deepest <= stop:
        deepest += 1
        level = [
            child for item in level if isinstance(item, dict | list)
            for child in (item.values() if isinstance(item, dict) else item)
            if isinstance(child, dict | list)
        ]  # fmt: skip
    return deepest


def check_message(message: IncomingMessage, limits: LimitsSettings, max_chars: int) -> None:
    """The checks every channel makes before ``accept`` or ``admit``."""
    if not message.sender:
        raise InvalidInput("sender must not be empty")
    if len(message.sender) > limits.max_sender_chars:
        raise InvalidInput(f"sender is {len(message.sender)} characters long; the limit is {limits.max_sender_chars}")
    check_text(message.sender, "sender")
    if blank(message.text):
        raise InvalidInput("message must not be empty")
    if len(message.text) > max_chars:
        raise InvalidInput(f"message is {len(message.text)} characters long; the limit is {max_chars}", status=413)
    check_text(message.text, "message")
    check_metadata(message.metadata, limits)
    if message.external_id is not None and len(message.external_id) > EXTERNAL_ID_CHARS:
        raise InvalidInput(f"the message id is longer than {EXTERNAL_ID_CHARS} characters")


class FeedbackIn(BaseModel):
    """A rating and/or a better reply (the admin API and the web widget take the same)."""

    model_config = ConfigDict(json_schema_extra={"anyOf": [
        {"required": ["rating"], "properties": {"rating": {"enum": ["up", "down"]}}},
        {"required": ["correction"], "properties": {"correction": {"type": "string", "pattern": NOT_BLANK}}},
    ]})  # fmt: skip

    rating: Literal["up", "down"] | None = None
    correction: Annotated[
        str | None,
        Field(max_length=8192, description="the reply it should have been", json_schema_extra={"pattern": NOT_BLANK}),
    ] = None

    @model_validator(mode="after")
    def _something(self) -> FeedbackIn:
        if self.correction is not None and blank(self.correction):
            raise ValueError("correction must not be empty")
        if self.rating is None and self.correction is None:
            raise ValueError("give a rating ('up' or 'down'), a correction, or both")
        return self
