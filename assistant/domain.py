"""The bot's own words: templated responses (Rasa 3's ``responses:`` format) and the LLM persona.

Files in the bot directory: ``domain.yml`` (``responses: {utter_<intent>: [{text, buttons?, image?,
attachment?, custom?, condition?, channel?}, ...]}``, and optionally ``answers: {<intent>: <custom action>}``
where an intent is answered by an action not named ``action_<intent>``) and ``persona.md`` (the LLM's system
prompt).

A response is chosen as Rasa chooses among its variations: those made for this channel (``channel:``) and
whose ``condition`` (slot values) holds come first, then this channel's unconditional ones, then conditional
ones for any channel, then the rest. Among those, the first whose ``{placeholders}`` are all filled is used
(so "Order {order_id} ..." wins over "Which order?" once the order number is known; Rasa picks at random), and
slot values are put in its text, buttons, image, attachment and custom payload.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.contracts import RichResponse

# a slot's name in braces; JSON in a payload (`/intent{"entity": "value"}`) is not one
PLACEHOLDER = re.compile(r"{([A-Za-z_][\w-]*)}")


def _placeholders(template: str) -> set[str]:
    return set(PLACEHOLDER.findall(template))


def _interpolate(value: Any, slots: dict[str, Any]) -> Any:
    """``{slot}`` replaced in every string of a response (unknown names are left as they are)."""
    if isinstance(value, str):
        return PLACEHOLDER.sub(lambda m: str(slots[m.group(1)]) if m.group(1) in slots else m.group(0), value)
    if isinstance(value, list):
        return [_interpolate(item, slots) for item in value]
    if isinstance(value, dict):
        return {key: _interpolate(item, slots) for key, item in value.items()}
    return value


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    return []


def _condition_holds(variant: dict[str, Any], slots: dict[str, Any]) -> bool:
    """Rasa's rule: every ``{type: slot, name, value}`` matches (strings compared without case)."""
    for constraint in variant.get("condition") or []:
        wanted, actual = constraint.get("value"), slots.get(constraint.get("name"))
        if isinstance(wanted, str) and isinstance(actual, str):
            if wanted.casefold() != actual.casefold():
                return False
        elif wanted != actual:
            return False
    return True


def merge_domain(into: dict[str, Any], part: dict[str, Any]) -> dict[str, Any]:
    """One more file of a domain split over several (Rasa's ``domain/`` folder): sections that are mappings
    are merged, lists concatenated, anything else replaced."""
    for key, value in part.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            into[key] = {**into[key], **value}
        elif isinstance(value, list) and isinstance(into.get(key), list):
            into[key] = into[key] + value
        else:
            into[key] = value
    return into


def declared(items: list[Any] | None) -> list[str]:
    """The names in a domain's ``intents:`` or ``actions:`` list: each a name, or a one-key mapping of the name to
    its options (``- greet: {use_entities: []}``)."""
    return [item if isinstance(item, str) else next(iter(item)) for item in items or []]


@dataclass(frozen=True)
class Rendered:
    """A response made for one turn: its text (what is stored and shown everywhere) and the rest."""

    text: str
    rich: RichResponse | None


@dataclass(frozen=True)
class SlotMapping:
    """One of a slot's ``mappings`` (Rasa 3): ``from_entity`` (``entity``, ``role``, ``group``), ``from_text``,
    ``from_intent`` (``value``), each only for ``intent`` and never for ``not_intent`` when given.
    ``from_trigger_intent`` (forms) and ``custom`` (actions) fill nothing here."""

    type: str
    entity: str | None = None
    role: str | None = None
    group: str | None = None
    value: Any = None
    intent: tuple[str, ...] = ()
    not_intent: tuple[str, ...] = ()

    @classmethod
    def of(cls, raw: dict[str, Any]) -> SlotMapping:
        def names(value: Any) -> tuple[str, ...]:
            return tuple(value) if isinstance(value, list) else (value,) if value else ()

        return cls(
            str(raw.get("type")), raw.get("entity"), raw.get("role"), raw.get("group"), raw.get("value"),
            names(raw.get("intent")), names(raw.get("not_intent")),
        )  # fmt: skip

    def applies(self, intent: str | None) -> bool:
        return (not self.intent or intent in self.intent) and intent not in self.not_intent

    def value_for(self, intent: str | None, entities: list[dict[str, Any]], text: str) -> Any:
        """The value this mapping gives the slot for this message (None: it gives none)."""
        if not self.applies(intent):
            return None
        if self.type == "from_entity":
            found = [
                e.get("value") for e in entities
                if e.get("entity") == self.entity
                and (self.role is None or e.get("role") == self.role)
                and (self.group is None or e.get("group") == self.group)
            ]  # fmt: skip
            return found[0] if len(found) == 1 else (found or None)
        if self.type == "from_text":
            return text
        if self.type == "from_intent" and self.intent:
            return self.value
        return None


@dataclass(frozen=True)
class Domain:
    responses: dict[str, list[dict[str, Any]]]
    persona: str
    # slot name -> its mappings; empty when the domain declares no slots (then each entity fills the slot of
    # its name, as before this project read Rasa's `slots:`)
    slots: dict[str, tuple[SlotMapping, ...]] = field(default_factory=dict)
    initial: dict[str, Any] = field(default_factory=dict)  # slots' `initial_value`s
    raw: dict[str, Any] = field(default_factory=dict)  # the domain as written (an action server is sent it)

    @classmethod
    def load(cls, bot_dir: Path) -> Domain:
        """``domain.yml`` (or every file of a ``domain/`` folder), and ``responses:`` in the training data files
        (where Rasa bots often keep their retrieval intents' ``utter_<intent>/<key>`` responses)."""
        files = [bot_dir / "domain.yml"] if (bot_dir / "domain.yml").is_file() else []
        files += sorted((bot_dir / "domain").rglob("*.yml")) + sorted((bot_dir / "data").rglob("*.yml"))
        responses: dict[str, list[dict[str, Any]]] = {}
        slots: dict[str, tuple[SlotMapping, ...]] = {}
        initial: dict[str, Any] = {}
        raw: dict[str, Any] = {}
        for path in files:
            data = yaml.safe_load(path.read_text()) or {}
            if not isinstance(data, dict):
                continue
            if path.parent.name != "data":
                merge_domain(raw, data)
            for name, variants in (data.get("responses") or {}).items():
                responses.setdefault(name, []).extend(v for v in variants or [] if isinstance(v, dict))
            for name, spec in (data.get("slots") or {}).items():
                spec = spec or {}
                slots[name] = tuple(SlotMapping.of(m) for m in spec.get("mappings") or [] if isinstance(m, dict))
                if spec.get("initial_value") is not None:
                    initial[name] = spec["initial_value"]
        persona_file = bot_dir / "persona.md"
        persona = persona_file.read_text().strip() if persona_file.exists() else ""
        raw["responses"] = responses
        return cls(responses, persona, slots, initial, raw)

    @property
    def actions(self) -> list[str]:
        """The custom actions the domain declares (``actions:``)."""
        return declared(self.raw.get("actions"))

    def action_for(self, intent: str) -> str:
        """The action that answers ``intent``: the one the domain's ``answers:`` names for it (where a Rasa rule
        answered it with a custom action; `init --from-rasa` writes these), else ``action_<intent>``."""
        answers = self.raw.get("answers")
        named = answers.get(intent) if isinstance(answers, dict) else None
        return str(named) if named else f"action_{intent}"

    def fill_slots(
        self, slots: dict[str, Any], intent: str | None, entities: list[dict[str, Any]], text: str
    ) -> dict[str, Any]:
        """The conversation's slots after this message, by the slots' mappings (Rasa's rule: the first mapping
        of a slot that gives a value wins); without ``slots:`` in the domain, each entity fills its namesake."""
        filled = {**self.initial, **slots}
        if not self.slots:
            for entity in entities:
                filled[entity["entity"]] = entity.get("value")
            return filled
        for name, mappings in self.slots.items():
            for mapping in mappings:
                value = mapping.value_for(intent, entities, text)
                if value is not None:
                    filled[name] = value
                    break
        return filled

    def variations(self, name: str, slots: dict[str, Any], channel: str | None) -> list[dict[str, Any]]:
        """The variations Rasa would choose from, in its order of preference."""
        variants = self.responses.get(name, [])
        conditional = [v for v in variants if v.get("condition") and _condition_holds(v, slots)]
        default = [v for v in variants if not v.get("condition")]
        for group in (
            [v for v in conditional if v.get("channel") == channel],
            [v for v in default if v.get("channel") == channel],
            [v for v in conditional if not v.get("channel")],
            [v for v in default if not v.get("channel")],
        ):
            if group:
                return group
        return []

    def response(self, name: str, slots: dict[str, Any], channel: str | None = None) -> Rendered | None:
        """Response ``name`` for these slots on ``channel``; None if the bot has no such response."""
        filled = {k: v for k, v in slots.items() if v not in (None, "")}
        candidates = self.variations(name, slots, channel)
        for variant in candidates:
            wanted = set().union(*(_placeholders(s) for s in _strings(_content(variant))))
            if wanted <= set(filled):
                return _rendered(variant, filled)
        return None

    def render(self, name: str, slots: dict[str, Any], channel: str | None = None) -> str | None:
        """The text of :meth:`response` (None if there is no response whose placeholders are all known)."""
        rendered = self.response(name, slots, channel)
        return rendered.text if rendered else None


def _content(variant: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in variant.items() if k in ("text", "buttons", "image", "attachment", "custom")}


def _rendered(variant: dict[str, Any], slots: dict[str, Any]) -> Rendered:
    content = _interpolate(copy.deepcopy(_content(variant)), slots)
    rich = RichResponse(
        buttons=[b for b in content.get("buttons") or [] if isinstance(b, dict)],
        image=content.get("image"),
        attachment=content.get("attachment"),
        custom=content.get("custom"),
    )
    return Rendered(str(content.get("text") or ""), None if rich.empty else rich)
