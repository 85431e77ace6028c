"""An existing Rasa 3 project folder turned into a bot directory this assistant runs (`assistant init
--from-rasa PATH`), with a plain-sentence report of what does not carry over.

What carries over as is: ``config.yml`` (the NLU pipeline; Rasa trains it), the NLU training data, the
domain (``domain.yml`` or a ``domain/`` folder: responses with their variations, slots with their mappings),
``credentials.yml``, ``endpoints.yml``, the NLU test files. Our router replaces Rasa's dialogue policies: an
intent is answered by ``action_<intent>`` or ``utter_<intent>``, anything else by the LLM. So where a rule or
a story answers an intent with a response of another name (``mood_great`` -> ``utter_happy``), that response
is copied to ``utter_<intent>``, and where it is a custom action, the domain's ``answers:`` names it (the
action runs on Rasa's action server, which `assistant up` starts for the bot's ``actions/``); stories,
rules, forms and the policies themselves are reported, not carried.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from assistant.config import RASA_CHANNELS, endpoint_url
from assistant.contracts import AssistantError
from assistant.domain import declared, merge_domain
from assistant.turn.router import FALLBACK_INTENT

DEFAULT_ACTION_ENDPOINT = "http://localhost:5055/webhook"  # where `rasa run actions` listens by default
DEFAULT_PERSONA = (
    "You are a friendly assistant. Answer in one or two short sentences. If you do not know something, say so."
)


@dataclass
class Imported:
    bot_dir: Path
    copied: list[str] = field(default_factory=list)  # what was taken, relative to the project
    mapped: dict[str, str] = field(default_factory=dict)  # intent -> the response it now answers with
    notes: list[str] = field(default_factory=list)  # sentences: what does not carry over, and why


def _yaml_files(folder: Path) -> list[Path]:
    return (
        sorted(p for p in folder.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file()) if folder.is_dir() else []
    )


def _load(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise AssistantError(f"{path} is not valid YAML: {exc}") from exc
    return data if isinstance(data, dict) else {}


def _first_answers(conversations: list[tuple[str, dict[str, Any]]]) -> dict[str, tuple[str, str, list[str]]]:
    """Intent -> (the first action a rule or story answers it with (a response or a custom action), where, the
    actions after it)."""
    found: dict[str, tuple[str, str, list[str]]] = {}
    for where, conversation in conversations:
        steps = conversation.get("steps") or []
        for i, step in enumerate(steps):
            intent = step.get("intent") if isinstance(step, dict) else None
            if not intent or intent in found:
                continue
            actions = []
            for later in steps[i + 1 :]:
                if not isinstance(later, dict) or "action" not in later:
                    break
                if later["action"] != "action_listen":
                    actions.append(str(later["action"]))
            if actions:
                found[intent] = (actions[0], where, actions[1:])
    return found


def import_project(project: Path, out: Path) -> Imported:
    """Make ``out`` a bot directory from the Rasa project at ``project``."""
    project = project.resolve()
    if not (project / "config.yml").is_file():
        raise AssistantError(f"{project} is not a Rasa project: it has no config.yml")
    domain_file, domain_dir = project / "domain.yml", project / "domain"
    if not domain_file.is_file() and not domain_dir.is_dir():
        raise AssistantError(f"{project} has neither domain.yml nor a domain/ folder")
    if out.exists() and any(out.iterdir()):
        raise AssistantError(f"{out} exists and is not empty: choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    done = Imported(out)

    def copy(relative: str) -> None:
        source = project / relative
        if source.is_dir():
            shutil.copytree(source, out / relative, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        elif source.is_file():
            shutil.copy2(source, out / relative)
        else:
            return
        done.copied.append(relative)

    for relative in ("config.yml", "credentials.yml", "endpoints.yml", "tests"):
        copy(relative)
    if (project / "credentials.yml").is_file():
        sections = list(_load(project / "credentials.yml"))
        if ours := [name for name in sections if name in RASA_CHANNELS]:
            done.notes.append(
                f"credentials.yml switches on these channels, as in Rasa: {', '.join(ours)} (with rest and web; "
                "set channels: in assistant.yml to choose)."
            )
        if others := [name for name in sections if name not in RASA_CHANNELS]:
            done.notes.append(f"credentials.yml sections with no channel here, ignored: {', '.join(others)}.")

    # training data: NLU (and responses) are kept; stories and rules are dialogue policy data
    conversations: list[tuple[str, dict[str, Any]]] = []
    (out / "data").mkdir(exist_ok=True)
    for path in _yaml_files(project / "data"):
        data = _load(path)
        kept = {k: v for k, v in data.items() if k in ("version", "nlu", "responses")}
        for kind in ("rules", "stories"):
            for item in data.get(kind) or []:
                name = item.get(kind[:-1] if kind == "rules" else "story") or "unnamed"
                conversations.append((f"{kind[:-1] if kind == 'rules' else 'story'} '{name}'", item))
        if kept.keys() - {"version"}:
            target = out / "data" / path.relative_to(project / "data")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(yaml.safe_dump(kept, sort_keys=False, allow_unicode=True))
            done.copied.append(f"data/{path.relative_to(project / 'data')}")
    rules = sum(1 for where, _ in conversations if where.startswith("rule"))
    stories = len(conversations) - rules
    if conversations:
        done.notes.append(
            f"{stories} stories and {rules} rules are not carried over: the router replaces dialogue policies "
            "(an intent is answered by action_<intent> or utter_<intent>, anything else by the LLM)."
        )

    # the domain, in one file, with responses copied to utter_<intent> where rules and stories say so
    domain: dict[str, Any] = {}
    for path in ([domain_file] if domain_file.is_file() else []) + _yaml_files(domain_dir):
        merge_domain(domain, _load(path))
    responses: dict[str, Any] = domain.setdefault("responses", {}) or {}
    domain["responses"] = responses
    intents = declared(domain.get("intents"))
    custom = set(declared(domain.get("actions")))
    answers: dict[str, str] = {}
    for intent, (first, where, rest) in sorted(_first_answers(conversations).items()):
        if intent == FALLBACK_INTENT:
            done.notes.append(
                f"{where} answers {FALLBACK_INTENT} (Rasa's FallbackClassifier) with {first}: here an unsure message "
                "goes to the LLM instead (router.confidence_threshold and ambiguity_margin decide)."
            )
            continue
        if first in custom:  # a custom action on the action server answers it
            if first != f"action_{intent}":
                answers[intent] = first
            done.mapped[intent] = first
        elif f"utter_{intent}" in responses or first not in responses or first == f"utter_{intent}":
            continue
        else:
            responses[f"utter_{intent}"] = responses[first]
            done.mapped[intent] = first
        if rest:
            done.notes.append(
                f"intent {intent}: {where} answers it with {first} and then {', '.join(rest)}; only {first} is "
                "sent (one reply per message)."
            )
    if answers:
        domain["answers"] = answers
    answered = {i for i in intents if f"utter_{i}" in responses or i in answers or f"action_{i}" in custom}
    if unanswered := [i for i in intents if i not in answered]:
        done.notes.append(
            f"intents without a response of their own, answered by an action plugin named action_<intent> or else "
            f"by the LLM: {', '.join(unanswered)}."
        )
    if forms := list((domain.get("forms") or {}).keys()):
        done.notes.append(f"forms are not carried over (no dialogue policies here): {', '.join(forms)}.")
        domain.pop("forms", None)
    if (project / "actions").is_dir():
        copy("actions")
        if custom and not endpoint_url(project / "endpoints.yml", "action_endpoint"):
            endpoints = _load(out / "endpoints.yml") if (out / "endpoints.yml").is_file() else {}
            endpoints["action_endpoint"] = {"url": DEFAULT_ACTION_ENDPOINT}
            (out / "endpoints.yml").write_text(yaml.safe_dump(endpoints, sort_keys=False))
            done.notes.append(
                f"endpoints.yml had no action_endpoint: it is now Rasa's default, {DEFAULT_ACTION_ENDPOINT}."
            )
        done.notes.append(
            "custom actions (actions/) run on Rasa's action server, as in Rasa: `assistant up` serves actions/ with "
            "rasa-sdk at action_endpoint; an intent is answered by the action its rules named (answers: in "
            "domain.yml), or by action_<intent>."
            if custom
            else "actions/ is copied, but the domain declares no actions: nothing calls the action server."
        )
    (out / "domain.yml").write_text(yaml.safe_dump(domain, sort_keys=False, allow_unicode=True))
    done.copied.append("domain.yml" if domain_file.is_file() else "domain/ (merged into domain.yml)")
    (out / "persona.md").write_text(DEFAULT_PERSONA + "\n")
    done.notes.append("persona.md is a default prompt for the LLM: describe your assistant in it.")
    return done
