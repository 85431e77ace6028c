"""Rasa's NLU training data read as Rasa reads it: examples of ``- intent:`` blocks, entity markup removed for
the text as typed. Evaluation reads the bot's test sets with it, and training's export merges the bot's data
with it (``training.export`` writes Rasa YAML back)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ANNOTATION = re.compile(r"\[([^\]]+)\]\((?:[^)]+)\)|\[([^\]]+)\]\{[^}]+\}")
HUMAN, BASE, AUTO = "label", "bot data", "auto-label"


def plain_text(text: str) -> str:
    """Rasa's entity markup ([value](entity), [value]{...}) removed: the message as it was typed."""
    return ANNOTATION.sub(lambda m: m.group(1) or m.group(2), text)


@dataclass(frozen=True)
class Example:
    text: str  # Rasa markup: entities as [value](entity)
    intent: str
    source: str

    @property
    def key(self) -> str:
        """What makes two examples the same: the plain text, case and spacing folded."""
        return " ".join(plain_text(self.text).lower().split())


class RasaYAMLLoader(yaml.SafeLoader):
    """Reads YAML as Rasa does (YAML 1.2): ``intent: yes`` is the intent "yes", not the boolean True."""


RasaYAMLLoader.yaml_implicit_resolvers = {
    first: [(tag, regex) for tag, regex in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
RasaYAMLLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def load_rasa_yaml(text: str) -> Any:
    return yaml.load(text, Loader=RasaYAMLLoader)


def read_rasa_nlu(paths: list[Path]) -> tuple[list[Example], list[dict[str, Any]]]:
    """Examples of every ``- intent:`` block, and the other NLU items (synonyms, regexes, lookups) as is."""
    examples: list[Example] = []
    others: list[dict[str, Any]] = []
    for path in paths:
        data = load_rasa_yaml(path.read_text()) or {}
        for item in data.get("nlu") or []:
            if "intent" not in item:
                others.append(item)
                continue
            for line in str(item.get("examples", "")).splitlines():
                text = line.strip().removeprefix("- ").strip()
                if text:
                    examples.append(Example(text, str(item["intent"]), BASE))
    return examples, others
