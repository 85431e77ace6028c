"""Personal data out of training data (the SFT and the NLU exports). A scrubber is any ``Callable[[str], str]``
registered in the ``assistant.scrubbers`` entry point group; ``default`` masks payment card numbers (those that
pass the Luhn check), IBANs (those that pass the mod-97 check), e-mail addresses and phone numbers."""

from __future__ import annotations

import re
from collections.abc import Callable

Scrubber = Callable[[str], str]
SCRUBBERS = "assistant.scrubbers"

EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# international or local numbers with at least 7 digits, allowing spaces, dots, dashes and brackets
PHONE = re.compile(r"(?<![\w])(?:\+|00)?\d[\d\s().-]{5,}\d(?![\w])")


# 13-19 digits, optionally in groups separated by spaces or dashes
CARD = re.compile(r"(?<![\w])\d(?:[ -]?\d){12,18}(?![\w])")
IBAN = re.compile(r"(?<![\w])[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}(?![\w])")


def luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch) * (2 if i % 2 else 1)
        total += n - 9 if n > 9 else n
    return total % 10 == 0


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "")
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(ch, 36)) for ch in rearranged)) % 97 == 1


def _card(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    return "<CARD>" if luhn(digits) else match.group()


def _iban(match: re.Match[str]) -> str:
    return "<IBAN>" if iban_valid(match.group()) else match.group()


def _looks_like_phone(match: re.Match[str]) -> str:
    digits = sum(ch.isdigit() for ch in match.group())
    return "<PHONE>" if digits >= 7 else match.group()


def default(text: str) -> str:
    text = IBAN.sub(_iban, CARD.sub(_card, text))  # before phone numbers, which would take card numbers too
    return PHONE.sub(_looks_like_phone, EMAIL.sub("<EMAIL>", text))


def none(text: str) -> str:
    return text
