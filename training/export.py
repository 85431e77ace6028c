"""Training data out of the log.

* NLU: human labels (plus, optionally, intent turns the model was very sure of) merged with the bot's own
  training data, de-duplicated, conflicts reported, written as Rasa YAML; part of the human labels is held
  out and joined to the bot's test examples for evaluation.
* SFT: LLM-routed replies rated up, or corrected (the correction is the target), as chat messages with the
  persona and the preceding turns; split into train/validation by conversation; personal data scrubbed.
  Only trusted feedback counts: a reviewer's, a trusted channel's, or anonymous feedback a reviewer approved.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import Connection, select

from assistant.config import Settings
from assistant.contracts import FeedbackSource, Reason, ReviewStatus, Role, Route
from assistant.domain import Domain
from assistant.infra import entry_points
from assistant.store import Store
from assistant.store import feedback as feedback_store
from assistant.store.tables import Feedback, Label, Message
from evaluation.nlu_data import AUTO, BASE, HUMAN, Example, load_rasa_yaml, read_rasa_nlu
from training.scrub import SCRUBBERS, Scrubber

messages, labels, feedback = Message.__table__, Label.__table__, Feedback.__table__
PRIORITY = {HUMAN: 0, BASE: 1, AUTO: 2}  # who wins when one text has two intents


@dataclass
class NLUExport:
    train: Path
    test: Path
    counts: dict[str, int]
    conflicts: list[dict[str, Any]]
    data_hash: str


@dataclass
class SFTExport:
    train: Path
    validation: Path
    counts: dict[str, int]
    data_hash: str


def stable_fraction(key: str) -> float:
    """A number in [0, 1) fixed by ``key``: the same split on every run."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8


def annotate(text: str, entities: list[dict[str, Any]]) -> str:
    """Rasa's ``[value](entity)`` markup from character offsets."""
    out, last = [], 0
    for entity in sorted(entities, key=lambda e: e["start"]):
        start, end = entity["start"], entity["end"]
        if start < last:
            continue  # overlapping spans cannot be written in markup
        out += [text[last:start], f"[{text[start:end]}]({entity['entity']})"]
        last = end
    return "".join([*out, text[last:]])


# ---------------------------------------------------------------- Rasa YAML in and out


class _Literal(str):
    pass


def _literal(dumper: yaml.SafeDumper, value: _Literal) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")


class _RasaDumper(yaml.SafeDumper):
    pass


_RasaDumper.add_representer(_Literal, _literal)


def read_responses(paths: list[Path]) -> dict[str, Any]:
    """The ``responses:`` kept in training data files (where Rasa bots keep their retrieval intents' answers,
    which Rasa's ResponseSelector needs beside the examples)."""
    responses: dict[str, Any] = {}
    for path in paths:
        data = load_rasa_yaml(path.read_text()) or {}
        responses.update(data.get("responses") or {})
    return responses


def write_rasa_nlu(
    path: Path,
    examples: list[Example],
    others: list[dict[str, Any]] | None = None,
    responses: dict[str, Any] | None = None,
) -> None:
    by_intent: dict[str, list[str]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example.text)
    items: list[dict[str, Any]] = [
        {"intent": intent, "examples": _Literal("".join(f"- {text}\n" for text in texts))}
        for intent, texts in sorted(by_intent.items())
    ]
    items += [  # synonyms, regexes, lookups: kept as they were, their examples as literal blocks too
        {k: _Literal(v) if k == "examples" and isinstance(v, str) else v for k, v in item.items()}
        for item in others or []
    ]
    document: dict[str, Any] = {"version": "3.1", "nlu": items}
    if responses:
        document["responses"] = responses
    path.write_text(yaml.dump(document, Dumper=_RasaDumper, sort_keys=False, allow_unicode=True, width=10_000))


def merge(examples: list[Example]) -> tuple[list[Example], list[dict[str, Any]]]:
    """One example per text; when a text has two intents the higher-priority source wins and it is reported."""
    chosen: dict[str, Example] = {}
    seen: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for example in examples:
        seen[example.key].add((example.intent, example.source))
        best = chosen.get(example.key)
        if best is None or PRIORITY[example.source] < PRIORITY[best.source]:
            chosen[example.key] = example
        elif example.source == HUMAN == best.source:
            chosen[example.key] = example  # the later human label wins
    conflicts = [
        {
            "text": key,
            "intents": sorted({intent for intent, _ in sources}),
            "sources": sorted({f"{intent} ({source})" for intent, source in sources}),
            "kept": chosen[key].intent,
        }
        for key, sources in seen.items()
        if len({intent for intent, _ in sources}) > 1
    ]
    return list(chosen.values()), conflicts


# ---------------------------------------------------------------- NLU


def _labelled(conn: Connection) -> list[Example]:
    query = (
        select(messages.c.text, labels.c.intent, labels.c.entities)
        .join(labels, labels.c.message_id == messages.c.id)
        .order_by(labels.c.created_at, labels.c.id)
    )
    return [Example(annotate(row.text, row.entities or []), row.intent, HUMAN) for row in conn.execute(query)]


def _auto_labelled(conn: Connection, min_confidence: float) -> list[Example]:
    query = select(messages.c.text, messages.c.intent, messages.c.entities).where(
        messages.c.role == Role.USER,
        messages.c.route == Route.INTENT,
        messages.c.confidence >= min_confidence,
        messages.c.id.not_in(select(labels.c.message_id)),
    )
    return [
        Example(annotate(row.text, [e for e in row.entities or [] if "start" in e]), row.intent, AUTO)
        for row in conn.execute(query)
    ]


async def export_nlu(
    settings: Settings, store: Store, out: Path, auto_label_confidence: float | None = None
) -> NLUExport:
    cfg = settings.training
    scrubber: Scrubber = entry_points.load(SCRUBBERS, cfg.scrubber)
    human = await store.transaction(_labelled)
    auto = []
    if auto_label_confidence is not None:
        auto = await store.transaction(lambda conn: _auto_labelled(conn, auto_label_confidence))
    # personal data out, as in the SFT export (Rasa's entity markup survives: only the values are masked)
    human, auto = ([replace(e, text=scrubber(e.text)) for e in examples] for examples in (human, auto))
    data_files = sorted((settings.bot_dir / "data").glob("*.yml"))
    base, others = read_rasa_nlu(data_files)
    bot_tests, _ = read_rasa_nlu(sorted((settings.bot_dir / "tests").glob("*.yml")))

    # Hold out part of the human labels, per intent, where there are enough of them to spare.
    per_intent: dict[str, list[Example]] = defaultdict(list)
    for example in human:
        per_intent[example.intent].append(example)
    held_out = [
        example
        for intent_examples in per_intent.values()
        if len(intent_examples) >= cfg.min_holdout_per_intent
        for example in intent_examples
        if stable_fraction(example.key) < cfg.holdout_fraction
    ]
    held_keys = {example.key for example in held_out}
    train, conflicts = merge([e for e in human if e.key not in held_keys] + base + auto)
    train = [e for e in train if e.key not in held_keys]
    test, _ = merge(held_out + [e for e in bot_tests if e.key not in {t.key for t in train}])

    out.mkdir(parents=True, exist_ok=True)
    train_path, test_path = out / "nlu.yml", out / "test.yml"
    write_rasa_nlu(train_path, train, others, read_responses(data_files))
    write_rasa_nlu(test_path, test)
    (out / "conflicts.json").write_text(json.dumps(conflicts, indent=2))
    counts = {
        "human_labels": len(human),
        "auto_labels": sum(e.source == AUTO for e in train),
        "bot_examples": len(base),
        "train_examples": len(train),
        "held_out_labels": len(held_out),
        "test_examples": len(test),
        "intents": len({e.intent for e in train}),
        "conflicts": len(conflicts),
    }
    data_hash = hashlib.sha256(train_path.read_bytes()).hexdigest()[:16]
    return NLUExport(train_path, test_path, counts, conflicts, data_hash)


# ---------------------------------------------------------------- SFT


TRUSTED_REVIEWS = (ReviewStatus.ACCEPTED, ReviewStatus.APPROVED)


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _grounded(reply: dict[str, Any]) -> bool:
    """A reply answered from the knowledge base (its stored prompt holds the passages): an approved answer or
    correction teaches the adapter to answer from them and cite them."""
    retrieval = _json(reply.get("retrieval")) or {}
    return bool(reply.get("prompt")) and bool(retrieval.get("passages")) and retrieval.get("evidence", False)


def _rated_replies(conn: Connection) -> list[dict[str, Any]]:
    """LLM-routed bot replies with their latest trusted feedback (a reviewer's, a trusted channel's, or
    approved anonymous feedback), the user message and the turns before it. Pending or rejected anonymous
    feedback is never read here."""
    query = (
        select(
            messages.c.id,
            messages.c.conversation_id,
            messages.c.text,
            messages.c.reply_to_id,
            messages.c.prompt,
            messages.c.retrieval,
            messages.c.reason,
            feedback.c.rating,
            feedback.c.correction,
            feedback.c.reviewed_correction,
            feedback.c.source,
        )
        .join(feedback, feedback.c.message_id == messages.c.id)
        .where(messages.c.role == Role.BOT, messages.c.route == Route.LLM, feedback.c.review.in_(TRUSTED_REVIEWS))
        .order_by(messages.c.id, feedback.c.created_at, feedback.c.id)
    )
    latest: dict[int, dict[str, Any]] = {}
    for row in conn.execute(query):
        entry = latest.setdefault(row.id, dict(row._mapping))
        entry["rating"] = row.rating or entry["rating"]
        entry["correction"] = row.reviewed_correction or row.correction or entry["correction"]
        entry["source"] = row.source
    return list(latest.values())


def _history(conn: Connection, conversation_id: int, up_to_id: int, limit: int) -> list[tuple[str, str]]:
    query = (
        select(messages.c.role, messages.c.text)
        .where(messages.c.conversation_id == conversation_id, messages.c.id <= up_to_id)
        .order_by(messages.c.id.desc())
        .limit(limit + 1)
    )
    return [(row.role, row.text) for row in reversed(conn.execute(query).all())]


async def export_sft(settings: Settings, store: Store, out: Path, scrub: bool = True) -> SFTExport:
    scrubber: Scrubber = entry_points.load(SCRUBBERS, settings.training.scrubber if scrub else "none")
    persona = Domain.load(settings.bot_dir).persona
    history_limit = 2 * settings.llm.history_turns

    def work(conn: Connection) -> list[dict[str, Any]]:
        examples = []
        for reply in _rated_replies(conn):
            target = reply["correction"] or (reply["text"] if reply["rating"] == "up" else None)
            if not target or reply["reply_to_id"] is None:
                continue  # rated down without a better answer: nothing to imitate
            if reply["reason"] == Reason.QUOTED:
                continue  # the documents' own sentences, not the LLM's: without the passages it would learn to
                # answer from memory (a quoted reply's feedback is for whoever keeps the documents)
            if _grounded(reply):  # the prompt it was answered from: the numbered passages and the question
                chat = [{"role": m["role"], "content": scrubber(m["content"])} for m in _json(reply["prompt"])]
            else:
                turns = _history(conn, reply["conversation_id"], reply["reply_to_id"], history_limit)
                chat = [{"role": "system", "content": scrubber(persona)}] if persona else []
                chat += [{"role": "user" if r == Role.USER else "assistant", "content": scrubber(t)} for r, t in turns]
            chat.append({"role": "assistant", "content": scrubber(target)})
            examples.append(
                {
                    "messages": chat,
                    "conversation_id": reply["conversation_id"],
                    "message_id": reply["id"],
                    "source": reply["source"],
                }
            )
        return examples

    examples = await store.transaction(work)
    feedback_counts = await store.transaction(feedback_store.source_counts)
    conversations = sorted({e["conversation_id"] for e in examples})
    fraction = settings.training.llm_validation_fraction
    validation_ids = {c for c in conversations if stable_fraction(f"conversation-{c}") < fraction}
    if not validation_ids and len(conversations) >= 2:  # always something to measure on
        validation_ids = {min(conversations, key=lambda c: stable_fraction(f"conversation-{c}"))}
    if len(validation_ids) == len(conversations) and len(conversations) >= 2:
        validation_ids.discard(max(conversations, key=lambda c: stable_fraction(f"conversation-{c}")))
    out.mkdir(parents=True, exist_ok=True)
    train_path, validation_path = out / "sft_train.jsonl", out / "sft_validation.jsonl"
    splits = {train_path: [e for e in examples if e["conversation_id"] not in validation_ids]}
    splits[validation_path] = [e for e in examples if e["conversation_id"] in validation_ids]
    for path, rows in splits.items():
        path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    counts = {
        "examples": len(examples),
        "train": len(splits[train_path]),
        "validation": len(splits[validation_path]),
        "conversations": len(conversations),
        **{f"from {source}": sum(e["source"] == source for e in examples) for source in FeedbackSource},
        "anonymous feedback pending review": feedback_counts.get("anonymous pending", 0),
        "anonymous feedback rejected": feedback_counts.get("anonymous rejected", 0),
    }
    data_hash = hashlib.sha256(train_path.read_bytes() + validation_path.read_bytes()).hexdigest()[:16]
    return SFTExport(train_path, validation_path, counts, data_hash)
