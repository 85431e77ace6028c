"""The LLM's evaluation sets: YAML files kept with the bot (``<bot>/evals/*.yml``), owned by reviewers and
never drawn from incoming feedback.

Each file is one set: ``name``, ``kind`` and ``part`` (``eval``, or ``tune`` for the part that settings are
chosen on, never reported as a result), and ``cases``: ``id``, ``message``, optional ``history`` (earlier
``[role, text]`` turns, put in the prompt as live), ``reference`` (the reply wanted; sets of kind
``reference``) and ``checks`` (behaviour checks beyond those every reply gets). Sets of kind ``grounded`` are
questions for the knowledge base: ``answerable`` (default true; false: the documents do not say, the reply
must abstain), ``reference`` (answerable ones) and ``gold`` (the documents that hold the answer, by file name
or stem); their figures are in ``evaluation.kb``. Sets of kind ``declined`` are requests outside what the bot
does, which it must decline (``evaluation.replies``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.contracts import AssistantError
from assistant.replies.checks import CHECKS

KINDS = ("reference", "behaviour", "grounded", "declined")
PARTS = ("eval", "tune")


class BadEvalSet(AssistantError, ValueError):
    pass


@dataclass(frozen=True)
class Case:
    id: str
    message: str
    history: tuple[tuple[str, str], ...] = ()
    reference: str | None = None
    checks: tuple[str, ...] = ()
    answerable: bool = True  # grounded sets: whether the documents hold the answer
    gold: tuple[str, ...] = ()  # grounded sets: the documents that do


@dataclass(frozen=True)
class EvalSet:
    name: str
    kind: str
    part: str
    path: Path
    cases: list[Case] = field(default_factory=list)

    def limited(self, limit: int | None) -> EvalSet:
        """At most ``limit`` cases, the same ones on every run (a stable sample, not the first ones)."""
        if limit is None or len(self.cases) <= limit:
            return self
        ranked = sorted(self.cases, key=lambda c: hashlib.sha256(f"{self.name}/{c.id}".encode()).hexdigest())
        keep = {c.id for c in ranked[:limit]}
        return EvalSet(self.name, self.kind, self.part, self.path, [c for c in self.cases if c.id in keep])


def load_set(path: Path) -> EvalSet:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise BadEvalSet(f"cannot read the evaluation set {path}: {exc}") from exc
    if not isinstance(data, dict) or not isinstance(data.get("cases"), list):
        raise BadEvalSet(f"{path}: an evaluation set is a mapping with `name`, `kind` and a list of `cases`")
    kind, part = data.get("kind", "reference"), data.get("part", "eval")
    if kind not in KINDS:
        raise BadEvalSet(f"{path}: kind {kind!r} is not one of {', '.join(KINDS)}")
    if part not in PARTS:
        raise BadEvalSet(f"{path}: part {part!r} is not one of {', '.join(PARTS)}")
    cases, seen = [], set()
    for number, item in enumerate(data["cases"], start=1):
        where = f"{path}, case {number}"
        if not isinstance(item, dict) or not str(item.get("message", "")).strip():
            raise BadEvalSet(f"{where}: every case needs a `message`")
        case_id = str(item.get("id", number))
        if case_id in seen:
            raise BadEvalSet(f"{where}: the id {case_id!r} is used twice")
        seen.add(case_id)
        reference = item.get("reference")
        answerable = item.get("answerable", True)
        if not isinstance(answerable, bool):
            raise BadEvalSet(f"{where}: `answerable` is true or false")
        if kind == "reference" and not str(reference or "").strip():
            raise BadEvalSet(f"{where}: sets of kind `reference` need a `reference` reply in every case")
        if kind == "grounded" and answerable and not str(reference or "").strip():
            raise BadEvalSet(f"{where}: answerable questions of a `grounded` set need a `reference` answer")
        checks = tuple(item.get("checks") or ())
        unknown = [c for c in checks if c not in CHECKS]
        if unknown:
            raise BadEvalSet(f"{where}: unknown checks {', '.join(unknown)} (known: {', '.join(CHECKS)})")
        history = []
        for turn in item.get("history") or []:
            if not (isinstance(turn, list | tuple) and len(turn) == 2 and turn[0] in ("user", "bot")):
                raise BadEvalSet(f"{where}: history turns are [user|bot, text]")
            history.append((str(turn[0]), str(turn[1])))
        gold = tuple(str(g) for g in item.get("gold") or ())
        message = str(item["message"])
        cases.append(Case(case_id, message, tuple(history), reference and str(reference), checks, answerable, gold))
    return EvalSet(str(data.get("name") or path.stem), kind, part, path, cases)


def load_sets(paths: list[Path], part: str | None = "eval") -> list[EvalSet]:
    """The sets in these files and folders (``*.yml``/``*.yaml``), of ``part`` (None: every part)."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted([*path.glob("*.yml"), *path.glob("*.yaml")])
        elif path.is_file():
            files.append(path)
        else:
            raise BadEvalSet(f"{path} is neither an evaluation set nor a folder of them")
    sets = [load_set(f) for f in files]
    sets = [s for s in sets if part is None or s.part == part]
    if not sets:
        raise BadEvalSet(f"no evaluation sets{f' of part {part!r}' if part else ''} in {', '.join(map(str, paths))}")
    return sets
