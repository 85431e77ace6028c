"""`assistant eval kb`, and the grounded sets of `assistant eval llm`: questions for the knowledge base
answered by the live path (the same retriever, prompt, guards and support check as a turn).

Retrieval: recall@1/5/10 and MRR of the gold documents (a passage counts when its document's file name or stem
is a gold id). Answers: token F1 and semantic similarity to the references on the answerable questions (an
abstention scores 0), abstention precision and recall on the unanswerable ones and over-refusal on the
answerable ones, citation validity (a cited passage was retrieved and supports the sentence that cites it: of
the model's own markers, and of the reply sent), retrieval latency p50/p95. Markdown + JSON + plots.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from statistics import mean, median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from assistant.config import KBSettings, Settings
from assistant.contracts import AssistantError, Embedder, Passage, Reason
from assistant.knowledge.grounding import ANSWERED, CITE, check, decide, extract, sentences, support
from assistant.knowledge.retrieval import HybridRetriever, answerability
from assistant.replies.writer import ReplyWriter
from evaluation.reply_metrics import percentile, token_f1
from evaluation.sets import BadEvalSet, Case, EvalSet, load_set

RANK_K = 10  # retrieval figures look this deep
ABSTAINED = (Reason.NO_EVIDENCE, Reason.UNSUPPORTED)
Progress = Callable[[int, int, str], None]


def load_qa(path: Path, part: str = "eval") -> EvalSet:
    """A grounded set from JSONL (``id``, ``question``, ``answerable``, ``gold_passages``, ``answers``: the ClapNQ
    form) or YAML (an evaluation set of kind ``grounded``)."""
    if path.suffix in (".yml", ".yaml"):
        loaded = load_set(path)
        if loaded.kind != "grounded":
            raise BadEvalSet(f"{path} is a set of kind {loaded.kind!r}; `eval kb` needs kind `grounded`")
        return loaded
    if not path.is_file():
        raise BadEvalSet(f"{path} does not exist")
    cases = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question = str(row["question"]).strip()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BadEvalSet(f"{path}, line {number}: a JSON object with at least `question` ({exc})") from exc
        if not question:
            raise BadEvalSet(f"{path}, line {number}: the question is empty")
        answers = [str(a) for a in row.get("answers") or ([row["reference"]] if row.get("reference") else [])]
        gold = tuple(str(g) for g in row.get("gold_passages") or row.get("gold") or ())
        answerable = bool(row.get("answerable", bool(answers)))
        reference = "\n".join(answers) if answers else None  # several references: the best one counts
        cases.append(Case(str(row.get("id", number)), question, (), reference, (), answerable, gold))
    if not cases:
        raise BadEvalSet(f"{path} has no questions")
    return EvalSet(path.stem, "grounded", part, path, cases)


def document_name(source: str) -> str:
    return source.replace("\\", "/").rsplit("/", 1)[-1]


def matches(source: str, gold: tuple[str, ...]) -> bool:
    name = document_name(source)
    return name in gold or name.rsplit(".", 1)[0] in gold


@dataclass
class GroundedResult:
    id: str
    question: str
    answerable: bool
    gold: list[str]
    ranked: list[str]  # documents of the retrieved passages, best first, each once
    gold_rank: int | None  # 1-based rank of the first gold document
    reply: str = ""
    raw: str = ""
    reason: str = ""
    evidence: bool = False
    citations: list[dict[str, Any]] = field(default_factory=list)
    model_citations: tuple[int, int] = (0, 0)  # (valid, all) [n] markers the model wrote itself
    reply_citations: tuple[int, int] = (0, 0)  # the same on the reply sent
    retrieval_ms: float = 0.0
    seconds: float = 0.0
    token_f1: float | None = None
    similarity: float | None = None
    error: str | None = None

    @property
    def abstained(self) -> bool:
        return self.reason in ABSTAINED


async def answer(
    writer: ReplyWriter | None,
    retriever: HybridRetriever,
    kb: KBSettings,
    model: str,
    case: Case,
    seed: int,
) -> GroundedResult:
    """One question the way a live turn answers it (``writer`` None: retrieval only)."""
    context = [text for role, text in case.history if role == "user"]
    found = await retriever.retrieve(case.message, context, top_k=max(RANK_K, kb.top_k))
    ranked = list(dict.fromkeys(document_name(p.source) for p in found.passages))
    gold_rank = next((i for i, name in enumerate(ranked, start=1) if matches(name, case.gold)), None)
    row, seconds = RawAnswer(case, found.passages[: kb.top_k]), 0.0
    if writer is None:
        result = GroundedResult(case.id, case.message, case.answerable, list(case.gold), [], None)
        result.evidence = found.evidence
    else:
        if found.evidence and kb.answer != "extract":  # the LLM is asked only when a live turn would ask it
            written = await writer.write(case.history, case.message, model, seed=seed, passages=row.passages)
            row.text, row.raw, seconds = written.text, written.raw, written.seconds
        (result,) = judge_raw([row], kb)
    result.ranked, result.gold_rank, result.retrieval_ms, result.seconds = ranked, gold_rank, found.latency_ms, seconds
    return result


def citation_validity(text: str, passages: list[Passage], min_support: float) -> tuple[int, int]:
    """(valid, all) ``[n]`` markers: valid when passage n was retrieved and supports its sentence."""
    valid = total = 0
    for sentence in sentences(text):
        for marker in CITE.findall(sentence):
            total += 1
            n = int(marker)
            valid += 1 <= n <= len(passages) and support(sentence, passages[n - 1].text) >= min_support
    return valid, total


async def evaluate(
    settings: Settings,
    writer: ReplyWriter | None,
    retriever: HybridRetriever,
    model: str,
    qa: EvalSet,
    on_progress: Progress | None = None,
    concurrency: int = 4,
) -> list[GroundedResult]:
    gate, done = asyncio.Semaphore(concurrency), 0

    async def one(index: int, case: Case) -> GroundedResult:
        nonlocal done
        async with gate:
            try:
                result = await answer(writer, retriever, settings.kb, model, case, 1000 + index)
            except AssistantError as exc:  # the LLM was unavailable: the case counts as failed, the run goes on
                result = GroundedResult(case.id, case.message, case.answerable, list(case.gold), [], None)
                result.error, result.reason = str(exc), "error"
        done += 1
        if on_progress:
            on_progress(done, len(qa.cases), case.id)
        return result

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(qa.cases))))


# ---------------------------------------------------------------- calibration (`assistant eval kb --calibrate`)

ANSWER_MODES = ("extract", "generate", "hybrid")
SENTENCE_WEIGHTS = (0.0, 0.3, 0.5, 0.7)
FLOORS = tuple(round(0.30 + 0.02 * i, 2) for i in range(19))  # 0.30 .. 0.66
SUPPORT_GRID = tuple(itertools.product((0.4, 0.5, 0.6, 0.7), (1, 2, 3, 5)))  # (min_support, min_answer_words)
TARGETS = {"abstention_recall": 0.8, "over_refusal": 0.15}
FLOOR_RECALL = 0.75  # when the targets cannot be met: decline at least this share of unanswerable questions


@dataclass
class RawAnswer:
    """A question's retrieval and, for the LLM's modes, its answer from the passages before any decision:
    every setting of the grid is judged on the same answers."""

    case: Case
    passages: list[Passage]
    text: str = ""
    raw: str = ""


async def raw_answers(
    writer: ReplyWriter | None,
    retriever: HybridRetriever,
    kb: KBSettings,
    model: str,
    qa: EvalSet,
    on_progress: Progress | None = None,
    concurrency: int = 4,
    grounded: bool = True,
) -> list[RawAnswer]:
    """Retrieve for every question and (``writer`` given) let the LLM answer from the top passages, whatever
    their score (``grounded`` False: without passages, the baseline)."""
    gate, done = asyncio.Semaphore(concurrency), 0

    async def one(index: int, case: Case) -> RawAnswer:
        nonlocal done
        async with gate:
            context = [text for role, text in case.history if role == "user"]
            found = await retriever.retrieve(case.message, context, top_k=kb.top_k)
            row = RawAnswer(case, found.passages)
            if writer is not None:
                passages = found.passages if grounded else []
                written = await writer.write(case.history, case.message, model, seed=1000 + index, passages=passages)
                row.text, row.raw = written.text, written.raw
        done += 1
        if on_progress:
            on_progress(done, len(qa.cases), case.id)
        return row

    return list(await asyncio.gather(*(one(i, c) for i, c in enumerate(qa.cases))))


def judge_raw(
    rows: list[RawAnswer], kb: KBSettings, memo: dict[tuple[Any, ...], Any] | None = None
) -> list[GroundedResult]:
    """The live decision applied to raw answers: the answerability floor, then the quoted sentences or the
    LLM's answer checked for support (``kb.answer``). ``memo``: shared by the settings of one calibration,
    so that what a setting does not change is worked out once."""
    memo = {} if memo is None else memo

    def once(key: tuple[Any, ...], make: Callable[[], Any]) -> Any:
        if key not in memo:
            memo[key] = make()
        return memo[key]

    results = []
    for i, row in enumerate(rows):
        case, passages = row.case, row.passages[: kb.top_k]
        result = GroundedResult(case.id, case.message, case.answerable, list(case.gold), [], None)
        score = once(("score", i, kb.top_k, kb.sentence_weight), partial(answerability, passages, kb.sentence_weight))
        result.evidence = score >= kb.min_score
        if not result.evidence:
            result.reply, result.reason = kb.abstain_reply, Reason.NO_EVIDENCE
        else:
            support_key = (i, kb.top_k, kb.min_support)
            if kb.answer == "extract":
                checked = once(("quote", i, kb.top_k, kb.max_sentences),
                               partial(extract, case.message, passages, kb.max_sentences))  # fmt: skip
                result.reply, result.reason = checked.text, Reason.QUOTED
            else:
                made = once(("check", *support_key), partial(check, row.text, passages, kb.min_support))
                result.reply, result.reason, checked = decide(row.text, passages, kb, case.message, made)
                result.raw = row.raw
                cited_by_model = partial(citation_validity, row.raw, passages, kb.min_support)
                result.model_citations = once(("cited", *support_key), cited_by_model)
            result.citations = [asdict(c) for c in checked.citations] if result.reason in ANSWERED else []
            cited_in_reply = partial(citation_validity, result.reply, passages, kb.min_support)
            result.reply_citations = once(("sent", result.reply, *support_key), cited_in_reply)
        if case.reference:
            result.token_f1 = (
                0.0 if result.abstained else once(("f1", i, result.reply), partial(_f1, result.reply, case))
            )
        results.append(result)
    return results


def _f1(reply: str, case: Case) -> float:
    """Token F1 against the closest reference; citation markers are not words of the answer."""
    answer = CITE.sub("", reply)
    return max(token_f1(answer, reference) for reference in str(case.reference).split("\n"))


def settings_grid(kb: KBSettings, modes: tuple[str, ...] = ANSWER_MODES) -> list[KBSettings]:
    """What calibration chooses: the answer mode, the answerability score's sentence weight and floor, and
    for the LLM's answers the support settings (quoting needs no support check)."""
    grid = []
    for mode, weight, floor in itertools.product(modes, SENTENCE_WEIGHTS, FLOORS):
        checks = [(kb.min_support, kb.min_answer_words)] if mode == "extract" else SUPPORT_GRID
        for min_support, words in checks:
            grid.append(kb.model_copy(update={
                "answer": mode, "sentence_weight": weight, "min_score": floor, "min_support": min_support,
                "min_answer_words": words,
            }))  # fmt: skip
    return grid


def calibrate(
    rows: list[RawAnswer], kb: KBSettings, modes: tuple[str, ...] = ANSWER_MODES
) -> tuple[KBSettings, dict[str, float | None]]:
    """Among the settings that meet both abstention targets (``TARGETS``), the best token F1; if none does,
    the best token F1 among those that decline at least ``FLOOR_RECALL`` of the unanswerable questions."""
    best: tuple[tuple[float, ...], KBSettings, dict[str, float | None]] | None = None
    memo: dict[tuple[Any, ...], Any] = {}
    for candidate in settings_grid(kb, modes):
        figures = answer_figures(judge_raw(rows, candidate, memo))
        recall, refusal = figures["abstention_recall"] or 0.0, figures["over_refusal"] or 0.0
        meets = recall >= TARGETS["abstention_recall"] and refusal <= TARGETS["over_refusal"]
        key = (float(meets), float(recall >= FLOOR_RECALL), figures["token_f1"] or 0.0, recall - refusal)
        if best is None or key > best[0]:
            best = (key, candidate, figures)
    if best is None:
        raise BadEvalSet("nothing to calibrate: no answer mode given")
    return best[1], best[2]


def add_similarity(embedder: Embedder, results: list[GroundedResult], cases: dict[str, Case]) -> None:
    """Cosine of each answer to its closest reference (answerable questions; an abstention scores 0)."""
    scored = [r for r in results if r.answerable and cases[r.id].reference and r.reply and not r.error]
    if not scored:
        return
    references = [cases[r.id].reference.split("\n") for r in scored]  # type: ignore[union-attr]
    flat = [ref for refs in references for ref in refs]
    vectors = embedder.embed([r.reply for r in scored] + flat)
    replies, refs = vectors[: len(scored)], vectors[len(scored) :]
    start = 0
    for result, group in zip(scored, references, strict=True):
        best = float(np.max(refs[start : start + len(group)] @ replies[scored.index(result)]))
        result.similarity = 0.0 if result.abstained else round(best, 4)
        start += len(group)


def retrieval_figures(results: list[GroundedResult]) -> dict[str, float | None]:
    judged = [r for r in results if r.answerable and r.gold]
    latencies = [r.retrieval_ms for r in results]

    def share(ok: Callable[[GroundedResult], bool]) -> float | None:
        return sum(map(ok, judged)) / len(judged) if judged else None

    return {
        "questions_with_gold": len(judged),
        **{f"recall@{k}": share(lambda r, k=k: r.gold_rank is not None and r.gold_rank <= k) for k in (1, 5, 10)},
        "mrr": mean(1 / r.gold_rank if r.gold_rank else 0.0 for r in judged) if judged else None,
        "retrieval_p50_ms": median(latencies) if latencies else None,
        "retrieval_p95_ms": percentile(latencies, 95) if latencies else None,
        "evidence_answerable": _share([r.evidence for r in results if r.answerable]),
        "evidence_unanswerable": _share([r.evidence for r in results if not r.answerable]),
    }


def answer_figures(results: list[GroundedResult]) -> dict[str, float | None]:
    done = [r for r in results if r.error is None]
    answerable = [r for r in done if r.answerable]
    unanswerable = [r for r in done if not r.answerable]
    abstained = [r for r in done if r.abstained]
    model = [sum(x) for x in zip(*(r.model_citations for r in done), strict=True)] if done else [0, 0]
    sent = [sum(x) for x in zip(*(r.reply_citations for r in done), strict=True)] if done else [0, 0]
    seconds = [r.seconds for r in done if r.seconds]
    return {
        "token_f1": mean(r.token_f1 or 0.0 for r in answerable) if answerable else None,
        "token_f1_answered": _mean([r.token_f1 or 0.0 for r in answerable if not r.abstained]),
        "similarity": _mean([r.similarity or 0.0 for r in answerable]),
        "abstention_precision": sum(not r.answerable for r in abstained) / len(abstained) if abstained else None,
        "abstention_recall": _share([r.abstained for r in unanswerable]),
        "over_refusal": _share([r.abstained for r in answerable]),
        "citation_validity_model": (model[1] and model[0] / model[1]) or None,
        "citation_validity_reply": (sent[1] and sent[0] / sent[1]) or None,
        "cited_replies": _share([bool(r.citations) for r in done if not r.abstained]),
        "answer_p50_s": median(seconds) if seconds else None,
        "errors": _share([r.error is not None for r in results]),
    }


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _mean(values: list[float]) -> float | None:
    return mean(values) if values else None


def rounded(figures: dict[str, Any]) -> dict[str, Any]:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in figures.items()}


# ---------------------------------------------------------------- the report


def write_report(
    out: Path, title: str, figures: dict[str, dict[str, Any]], results: list[GroundedResult], note: str = ""
) -> Path:
    """``report.md``, ``kb_eval.json`` (figures and every answer) and ``kb_eval.png`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "kb_eval.json").write_text(
        json.dumps({"figures": figures, "results": [asdict(r) for r in results]}, indent=1, ensure_ascii=False)
    )
    lines = [f"# {title}", "", note, ""] if note else [f"# {title}", ""]
    for section, values in figures.items():
        lines += [f"## {section}", "", "| figure | value |", "|---|---|"]
        lines += [
            f"| {k} | {'-' if v is None else (f'{v:.3f}' if isinstance(v, float) else v)} |" for k, v in values.items()
        ]
        lines.append("")
    lines += ["## Sample answers", "", "| question | answerable | reply | gold rank |", "|---|---|---|---|"]
    for r in results[:12]:
        reply = r.reply.replace("|", "\\|").replace("\n", " ")[:200]
        lines.append(f"| {r.question} | {'yes' if r.answerable else 'no'} | {reply} | {r.gold_rank or '-'} |")
    lines += ["", "![figures](kb_eval.png)", ""]
    report = out / "report.md"
    report.write_text("\n".join(lines))
    _plot(figures, out / "kb_eval.png")
    return report


def _cell(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def _plot(figures: dict[str, dict[str, Any]], path: Path) -> None:
    names = ["recall@1", "recall@5", "recall@10", "mrr", "token_f1", "similarity", "abstention_recall", "over_refusal"]
    merged = {k: v for values in figures.values() for k, v in values.items()}
    shown = [(n, merged[n]) for n in names if isinstance(merged.get(n), float)]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    ax.bar([n for n, _ in shown], [v for _, v in shown], color="#4c72b0")
    ax.set_ylim(0, 1)
    ax.set_title("knowledge base: retrieval and answers")
    ax.tick_params(axis="x", rotation=30)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
