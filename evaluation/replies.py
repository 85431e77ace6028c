"""`assistant eval replies`: every evaluation message through the real turn (NLU, router, curated replies,
knowledge base, LLM, guards), as a channel sends it, and each reply judged by what kind of message it
answers: what a person reads, not one component.

- **small talk** (sets of kind ``reference``): never the knowledge base's abstain reply, never a business
  intent's answer; similarity to the reference reply, length, loops, behaviour checks;
- **behaviour** cases: the behaviour checks;
- **answerable** questions about the documents (``grounded`` sets): answered and cited, not abstained;
- **unanswerable** questions and **out-of-scope** requests (``declined`` sets): declined with the abstain
  reply, which says what the bot can do.

Every reply is put in a route class (curated, business, knowledge base, abstain, LLM, fallback), and the
report crosses kinds with classes, so a wrong route shows as a number, not as an anecdote.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from assistant.contracts import NLUBackend, Reason, Route
from assistant.replies.checks import ALWAYS, CheckContext, failures
from assistant.turn.router import Router
from evaluation import nlu_report as report
from evaluation.reply_metrics import cosine, looping_share, percentile, words
from evaluation.sets import EvalSet

KINDS = ("smalltalk", "behaviour", "answerable", "unanswerable", "out_of_scope")
CLASSES = ("curated", "business", "kb", "abstain", "llm", "fallback")
ABSTAINED = (Reason.NO_EVIDENCE, Reason.UNSUPPORTED)
FROM_KB = (Reason.GROUNDED, Reason.QUOTED)
FAILED = (Reason.LLM_UNAVAILABLE, Reason.LLM_EMPTY, Reason.NLU_UNAVAILABLE)
SAMPLES = 20


@dataclass(frozen=True)
class Answer:
    """A turn's reply as its channel got it (the REST stream's ``message`` event)."""

    text: str
    route: str
    reason: str
    intent: str | None
    answered_by: str | None
    citations: int
    latency_ms: float

    @classmethod
    def of_event(cls, event: dict[str, Any]) -> Answer:
        return cls(
            text=str(event.get("text") or ""), route=str(event["route"]), reason=str(event["reason"]),
            intent=event.get("intent"), answered_by=event.get("model"), citations=len(event.get("citations") or []),
            latency_ms=float(event.get("latency_ms") or 0.0),
        )  # fmt: skip


Respond = Callable[[str, str], Awaitable[Answer]]  # (sender, message) -> the reply
Progress = Callable[[int, int, str], None]


@dataclass
class Judged:
    set: str
    id: str
    kind: str
    message: str
    reference: str | None
    answer: Answer
    route_class: str
    ok: bool  # what this kind of message must get
    failed_checks: list[str] = field(default_factory=list)
    similarity: float | None = None


@dataclass
class Evaluation:
    judged: list[Judged]
    figures: dict[str, dict[str, float | None]]  # kind -> metric -> value
    confusion: dict[str, dict[str, int]]  # kind -> route class -> replies

    def figure(self, kind: str, name: str) -> float | None:
        return self.figures.get(kind, {}).get(name)


def kind_of(eval_set: EvalSet, answerable: bool) -> str:
    if eval_set.kind == "grounded":
        return "answerable" if answerable else "unanswerable"
    return {"reference": "smalltalk", "behaviour": "behaviour", "declined": "out_of_scope"}[eval_set.kind]


def route_class(answer: Answer, smalltalk_intents: frozenset[str]) -> str:
    """Where the reply came from, as a reader would tell: a written small-talk reply, a business intent's
    answer, the documents, the abstain reply, the LLM, or a fallback."""
    if answer.route == Route.INTENT:
        curated = (answer.intent or "").split("/")[0] in smalltalk_intents or (answer.answered_by or "").startswith(
            "annotation-"
        )
        return "curated" if curated else "business"
    if answer.reason in FROM_KB:
        return "kb"
    if answer.reason in ABSTAINED:
        return "abstain"
    if answer.reason in FAILED:
        return "fallback"
    if (answer.answered_by or "").startswith("annotation-"):
        return "curated"
    return "llm"


def judge(
    eval_set: EvalSet, case_id: str, message: str, reference: str | None, answerable: bool, answer: Answer,
    smalltalk_intents: frozenset[str], checks: CheckContext,
) -> Judged:  # fmt: skip
    kind = kind_of(eval_set, answerable)
    cls = route_class(answer, smalltalk_intents)
    failed = sorted(failures(answer.text, checks, ALWAYS)) if cls in ("llm", "curated") else []
    if kind == "smalltalk":
        ok = cls in ("curated", "llm") and not failed
    elif kind == "behaviour":
        ok = not failed
    elif kind == "answerable":
        ok = cls == "kb" and answer.citations > 0
    else:
        ok = cls == "abstain"
    return Judged(eval_set.name, case_id, kind, message, reference, answer, cls, ok, failed)


async def run(
    sets: list[EvalSet], respond: Respond, smalltalk_intents: frozenset[str], checks: CheckContext,
    sender_prefix: str, progress: Progress | None = None,
) -> list[Judged]:  # fmt: skip
    """Each case as a new conversation (its own sender) through ``respond``, judged."""
    cases = [(s, c) for s in sets for c in s.cases]
    judged = []
    for number, (eval_set, case) in enumerate(cases, start=1):
        answer = await respond(f"{sender_prefix}-{eval_set.name}-{case.id}", case.message)
        judged.append(
            judge(eval_set, case.id, case.message, case.reference, case.answerable, answer, smalltalk_intents, checks)
        )
        if progress:
            progress(number, len(cases), f"{eval_set.name}/{case.id}")
    return judged


def add_similarity(judged: list[Judged], embed: Callable[[list[str]], list[list[float]]]) -> None:
    """Cosine similarity of each small-talk reply to its reference (the sentence encoder)."""
    scored = [j for j in judged if j.reference is not None and j.kind == "smalltalk"]
    if not scored:
        return
    vectors = embed([j.answer.text for j in scored] + [str(j.reference) for j in scored])
    for i, item in enumerate(scored):
        item.similarity = round(cosine(vectors[i], vectors[len(scored) + i]), 4) if item.answer.text else 0.0


def evaluate(judged: list[Judged]) -> Evaluation:
    figures: dict[str, dict[str, float | None]] = {}
    confusion: dict[str, dict[str, int]] = {}
    for kind in KINDS:
        items = [j for j in judged if j.kind == kind]
        if not items:
            continue
        counts = Counter(j.route_class for j in items)
        confusion[kind] = {cls: counts.get(cls, 0) for cls in CLASSES}
        share = {cls: counts.get(cls, 0) / len(items) for cls in CLASSES}
        lengths = [len(words(j.answer.text)) for j in items]
        latencies = [j.answer.latency_ms for j in items]
        metrics: dict[str, float | None] = {
            "cases": len(items),
            "ok": mean(j.ok for j in items),
            **{f"route_{cls}": share[cls] for cls in CLASSES},
            "words_median": median(lengths),
            "looping": looping_share([j.answer.text for j in items]),
            "checks_passed": mean(not j.failed_checks for j in items),
            "latency_p50_ms": percentile(latencies, 50),
            "latency_p95_ms": percentile(latencies, 95),
        }
        if kind == "smalltalk":
            similar = [j.similarity for j in items if j.similarity is not None]
            metrics["similarity"] = mean(similar) if similar else None
            metrics["abstained"] = share["abstain"]
            metrics["business"] = share["business"]
        if kind == "answerable":
            metrics["abstained"] = share["abstain"]
            metrics["cited"] = mean(j.answer.citations > 0 for j in items)
        if kind in ("unanswerable", "out_of_scope"):
            metrics["declined"] = share["abstain"]
        figures[kind] = {k: None if v is None else round(float(v), 4) for k, v in metrics.items()}
    return Evaluation(judged, figures, confusion)


# ---------------------------------------------------------------- the report

SHOWN = ("cases", "ok", "abstained", "business", "similarity", "cited", "declined", "words_median", "looping",
         "checks_passed", "latency_p50_ms", "latency_p95_ms")  # fmt: skip


def samples(judged: list[Judged], count: int = SAMPLES) -> list[Judged]:
    """A stable sample across kinds (half small talk), the same cases on every run."""
    ranked = sorted(judged, key=lambda j: hashlib.sha256(f"{j.set}/{j.id}".encode()).hexdigest())
    smalltalk = [j for j in ranked if j.kind == "smalltalk"][: count // 2]
    rest = [j for j in ranked if j.kind != "smalltalk"][: count - len(smalltalk)]
    return sorted(smalltalk + rest, key=lambda j: (KINDS.index(j.kind), j.set, j.id))


def write_report(out: Path, evaluation: Evaluation, title: str, note: str = "") -> Path:
    """``report.md`` (figures per kind, kind x route, 20 replies side by side), ``replies.json``, a plot."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"figures": evaluation.figures, "confusion": evaluation.confusion,
            "replies": [asdict(j) for j in evaluation.judged]}  # fmt: skip
    (out / "replies.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    _routes_png(evaluation, out / "routes.png")
    kinds = list(evaluation.figures)
    lines = [f"| metric | {' | '.join(kinds)} |", "|---" * (len(kinds) + 1) + "|"]
    for name in SHOWN:
        if any(evaluation.figure(k, name) is not None for k in kinds):
            lines.append(f"| {name} | " + " | ".join(report.fmt(evaluation.figure(k, name)) for k in kinds) + " |")
    confusion = [f"| kind \\ route | {' | '.join(CLASSES)} |", "|---" * (len(CLASSES) + 1) + "|"]
    confusion += [f"| {kind} | " + " | ".join(str(row[c]) for c in CLASSES) + " |"
                  for kind, row in evaluation.confusion.items()]  # fmt: skip
    table = ["| message | kind | route (reason, by) | reply | reference | ok |", "|---|---|---|---|---|---|"]
    for j in samples(evaluation.judged):
        a = j.answer
        cells = [j.message, j.kind, f"{j.route_class} ({a.reason}, {a.answered_by or '-'})", a.text,
                 j.reference or "", "yes" if j.ok else "**no**"]  # fmt: skip
        table.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    sections = [f"# {title}", note, "## Figures by kind of message\n\n" + "\n".join(lines),
                "## Kind of message x where the reply came from\n\n" + "\n".join(confusion),
                f"## {SAMPLES} replies as people read them\n\n" + "\n".join(table),
                "![routes per kind](routes.png)"]  # fmt: skip
    return report.write(out / "report.md", [s for s in sections if s])


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _routes_png(evaluation: Evaluation, path: Path) -> None:
    kinds = list(evaluation.confusion)
    fig, ax = plt.subplots(figsize=(8, 4))
    bottom = [0.0] * len(kinds)
    for cls in CLASSES:
        shares = [evaluation.confusion[k][cls] / max(1, sum(evaluation.confusion[k].values())) for k in kinds]
        ax.bar(kinds, shares, bottom=bottom, label=cls)
        bottom = [b + s for b, s in zip(bottom, shares, strict=True)]
    ax.set_ylabel("share of replies")
    ax.legend(loc="upper left", bbox_to_anchor=(1, 1))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


async def nlu_routes(
    backend: NLUBackend, sets: list[EvalSet], router: Router, smalltalk_intents: frozenset[str]
) -> dict[str, float | int | None]:
    """What the NLU alone decides for the reply sets' small talk and out-of-scope requests, with no LLM and no
    documents: the share of small talk no business intent answers, and of out-of-scope requests no intent
    answers (they go on to the documents and the abstain reply). The retrain's NLU gate compares a candidate
    with the active model on these, so that a model better on its test set but worse for what people get is
    not promoted."""
    smalltalk = [c.message for s in sets if s.kind == "reference" for c in s.cases]
    declined = [c.message for s in sets if s.kind == "declined" for c in s.cases]

    async def routes(messages: list[str]) -> list[tuple[Route, str]]:
        decisions = [router.decide(p) for p in await asyncio.gather(*(backend.parse(m) for m in messages))]
        return [(d.route, (d.intent or "").split("/")[0]) for d in decisions]  # chitchat/<topic>: chitchat

    chatted, asked = await routes(smalltalk), await routes(declined)
    business = [route == Route.INTENT and intent not in smalltalk_intents for route, intent in chatted]
    answered = [route == Route.INTENT for route, _ in asked]
    return {
        "smalltalk_not_business": round(1 - mean(business), 4) if business else None,
        "smalltalk_messages": len(business),
        "out_of_scope_not_answered": round(1 - mean(answered), 4) if answered else None,
        "out_of_scope_messages": len(answered),
    }
