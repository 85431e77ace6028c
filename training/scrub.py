"""Personal data out of fine-tuning data. A scrubber is any ``Callable[[str], str]`` registered in the
``assistant.scrubbers`` entry point group; ``default`` masks e-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Callable

Scrubber = Callable[[str], str]
SCRUBBERS = "assistant.scrubbers"

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# international or local numbers with at least 7 digits, allowing spaces, dots, dashes and brackets
PHONE = re.compile(r"(?<![\w])(?:\+|00)?\d[\d\s().-]{5,}\d(?![\w])")


def _looks_like_phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group())
    return "<PHONE>" if digits >= 7 else match.group()


def default(text: str) -> str:
    return PHONE.sub(_looks_like_phone, EMAIL.sub("<EMAIL>", text))


def none(text: str) -> str:
    return text
