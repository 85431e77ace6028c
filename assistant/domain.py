"""The bot's own words: templated responses (Rasa's ``responses:`` format) and the LLM persona.

Files in the bot directory: ``domain.yml`` (``responses: {utter_<intent>: [{text: ...}, ...]}``) and
``persona.md`` (the LLM's system prompt).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

_formatter = string.Formatter()


def _placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in _formatter.parse(template) if field}


@dataclass(frozen=True)
class Domain:
    responses: dict[str, list[str]]
    persona: str

    @classmethod
    def load(cls, bot_dir: Path) -> Domain:
        data = yaml.safe_load((bot_dir / "domain.yml").read_text()) or {}
        responses = {
            name: [variant["text"] for variant in variants if "text" in variant]
            for name, variants in (data.get("responses") or {}).items()
        }
        persona_file = bot_dir / "persona.md"
        persona = persona_file.read_text().strip() if persona_file.exists() else ""
        return cls(responses, persona)

    def render(self, name: str, slots: dict[str, Any]) -> str | None:
        """The first variant of response ``name`` whose placeholders are all filled by ``slots``.

        Variants are ordered most specific first, so "Order {order_id} ..." wins over "Which order?"
        once the order number is known. None if there is no such response.
        """
        for template in self.responses.get(name, []):
            if _placeholders(template) <= {k for k, v in slots.items() if v not in (None, "")}:
                return template.format(**slots)
        return None
