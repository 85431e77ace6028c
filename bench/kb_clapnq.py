"""The knowledge base on ClapNQ (597 Wikipedia passages, 408 questions), in one run (not a test).

The questions are split by a stable hash of their id into a **tuning** part and a **report** part. Settings
are chosen on the tuning part only (chunk size, fusion rule, the evidence floor, the support threshold and the
fewest supported words); the report part is measured once with what was chosen. Held-out questions of the same
kind can be measured with the same command (``--questions FILE --part all``).

1. Index the passages (each is a document named by its id) into the embedded store (SQLite) and, when a
   PostgreSQL URL is given, into pgvector: index time, size, peak memory.
2. Retrieval on the tuning part for each chunk size and fusion rule (RRF, weighted; keyword only and dense
   only for comparison): recall@1/5/10, MRR; the best fused rule (recall@5, then MRR) is kept.
3. Retrieval on the report part with it, for each store: recall@k, MRR, p50/p95 latency (the latency a turn
   gains: embedding the query, both searches, fusion).
4. With a running vLLM (``--vllm-url``, default the configured one): grounded answers on the tuning part,
   where the answer mode (quoted, generated, or generated with quoting instead of abstaining), the
   answerability score's sentence weight and floor, and the support settings are chosen; then on the
   report part the grounded answers and, as the baseline, the same questions answered by the LLM without
   retrieval: token F1, similarity, abstention precision/recall, over-refusal, citation validity.

    .venv/bin/python bench/kb_clapnq.py [--postgres URL] [--limit N] [--no-answers] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import psutil
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import text

from assistant.config import KBSettings, Settings
from assistant.contracts import EMBEDDERS
from assistant.domain import Domain
from assistant.infra import entry_points
from assistant.knowledge.indexing import KnowledgeBase
from assistant.knowledge.retrieval import HybridRetriever
from assistant.replies.writer import ReplyWriter
from assistant.store import Store
from assistant.store.migrations.migrate import upgrade
from evaluation import kb as kb_eval
from evaluation.llm import llm_backend
from evaluation.reply_metrics import token_f1
from evaluation.sets import EvalSet

console = Console(width=int(os.environ.get("COLUMNS", "160")))
DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "clapnq"
CHUNKS = [600, 1000, 1600]
FUSIONS: list[dict[str, Any]] = [
    {"fusion": "keyword"},
    {"fusion": "dense"},
    {"fusion": "rrf", "rrf_k": 60},
    {"fusion": "rrf", "rrf_k": 10},
    *({"fusion": "weighted", "dense_weight": w} for w in (0.3, 0.5, 0.7)),
]
RETRIEVAL_SHOWN = ("recall@1", "recall@5", "recall@10", "mrr", "retrieval_p50_ms", "retrieval_p95_ms")
ANSWERS_SHOWN = (
    "token_f1", "similarity", "abstention_precision", "abstention_recall", "over_refusal",
    "citation_validity_model", "citation_validity_reply", "cited_replies",
)  # fmt: skip


def part_of(question_id: str) -> str:
    digest = hashlib.sha256(f"clapnq-split/{question_id}".encode()).digest()
    return "tune" if digest[0] < 128 else "report"


def questions(path: Path, part: str, limit: int | None) -> EvalSet:
    qa = kb_eval.load_qa(path)
    cases = [c for c in qa.cases if part == "all" or part_of(c.id) == part]
    return EvalSet(f"clapnq-{part}", "grounded", part, path, cases).limited(limit)


def write_passages(folder: Path) -> int:
    count = 0
    for line in (DATA / "passages.jsonl").read_text().splitlines():
        row = json.loads(line)
        (folder / f"{row['id']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n")
        count += 1
    return count


def retriever_for(kb: KBSettings, store: Store, embedder: Any, config: dict[str, Any]) -> HybridRetriever:
    return HybridRetriever(replace_kb(kb, **config), store, embedder)


def replace_kb(kb: KBSettings, **changes: Any) -> KBSettings:
    return kb.model_copy(update=changes)


async def retrieval_run(settings: Settings, retriever: HybridRetriever, qa: EvalSet) -> dict[str, Any]:
    results = await kb_eval.evaluate(settings, None, retriever, "none", qa, concurrency=1)
    return kb_eval.retrieval_figures(results)


async def index_store(settings: Settings, url: str, folder: Path, embedder: Any) -> dict[str, Any]:
    await asyncio.to_thread(upgrade, url)
    store = Store(url)
    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    try:
        change = await KnowledgeBase(settings.kb, store, embedder).add([folder])
    finally:
        await store.aclose()
    seconds = time.perf_counter() - started
    return {"index_s": round(seconds, 1), "chunks": change.chunks, "size_mb": round(await size_mb(url), 1),
            "rss_gain_mb": round((psutil.Process().memory_info().rss - rss) / 2**20, 1)}  # fmt: skip


async def size_mb(url: str) -> float:
    if url.startswith("sqlite"):
        path = Path(url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 2**20
    store = Store(url)
    try:
        query = text("SELECT sum(pg_total_relation_size(c)) FROM unnest(ARRAY['kb_chunks', 'kb_documents']) c")
        return float(await store.transaction(lambda conn: conn.execute(query).scalar()) or 0) / 2**20
    finally:
        await store.aclose()


async def answers(
    settings: Settings, retriever: HybridRetriever, qa: EvalSet, model: str, grounded: bool, bar: Progress
) -> list[kb_eval.RawAnswer]:
    """Raw answers (grounded: with the top passages, whatever their score; the decisions are made after)."""
    llm = llm_backend(settings)
    writer = ReplyWriter(settings, llm, Domain.load(settings.bot_dir))
    task = bar.add_task(f"answers {'grounded' if grounded else 'no retrieval'} ({qa.name})", total=len(qa.cases))
    try:
        return await kb_eval.raw_answers(
            writer, retriever, settings.kb, model, qa, lambda done, *_: bar.update(task, completed=done),
            grounded=grounded,
        )  # fmt: skip
    finally:
        await llm.aclose()


def judged(rows: list[kb_eval.RawAnswer], kb: KBSettings, embedder: Any) -> list[kb_eval.GroundedResult]:
    results = kb_eval.judge_raw(rows, kb)
    kb_eval.add_similarity(embedder, results, {r.case.id: r.case for r in rows})
    return results


def ungrounded(rows: list[kb_eval.RawAnswer]) -> dict[str, float | None]:
    scores = [max(token_f1(r.text, ref) for ref in r.case.reference.split("\n")) for r in rows
              if r.case.answerable and r.case.reference]  # fmt: skip
    return {"token_f1": sum(scores) / len(scores) if scores else None}


def _row(row: kb_eval.RawAnswer) -> dict[str, Any]:
    """One raw answer, for analysis after the run (``--json``)."""
    case = row.case
    return {"id": case.id, "question": case.message, "answerable": case.answerable, "reference": case.reference,
            "raw": row.raw, "text": row.text,
            "passages": [{"source": p.source.rsplit("/", 1)[-1], "text": p.text, "dense": p.dense,
                          "score": p.score, "sentences": p.sentences}
                         for p in row.passages]}  # fmt: skip


def show(title: str, rows: dict[str, dict[str, Any]]) -> None:
    names = list(dict.fromkeys(k for values in rows.values() for k in values))
    table = Table(title=title)
    table.add_column("")
    for name in names:
        table.add_column(name)
    for label, values in rows.items():
        table.add_row(label, *(_cell(values.get(n)) for n in names))
    console.print(table)


def _cell(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=Path, default=DATA / "questions_dev.jsonl")
    parser.add_argument("--part", default="report", choices=["report", "all"], help="what the figures are on")
    parser.add_argument("--postgres", default=os.environ.get("ASSISTANT_TEST_POSTGRES_URL"))
    parser.add_argument("--limit", type=int, default=None, help="at most this many questions per part")
    parser.add_argument("--no-answers", action="store_true", help="retrieval only (no LLM)")
    parser.add_argument("--vllm-url", default=None)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--chunk-sizes", default=",".join(map(str, CHUNKS)), help="chunk sizes to try (characters)")
    args = parser.parse_args()
    settings = Settings()
    if args.vllm_url:
        settings = settings.model_copy(update={"vllm": settings.vllm.model_copy(update={"url": args.vllm_url})})
    embedder = entry_points.load(EMBEDDERS, settings.kb.embedder)(settings)
    tune = questions(DATA / "questions_dev.jsonl", "tune", args.limit)
    report = questions(args.questions, args.part, args.limit)
    console.print(f"ClapNQ: {len(tune.cases)} tuning questions, {len(report.cases)} report questions ({args.part})")
    out: dict[str, Any] = {"tune_questions": len(tune.cases), "report_questions": len(report.cases)}

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "passages"
        folder.mkdir()
        write_passages(folder)
        # 2. chunk size x fusion, on the tuning part
        tuning: dict[str, dict[str, Any]] = {}
        best: tuple[tuple[float, float], int, dict[str, Any]] | None = None
        for chunk in [int(c) for c in args.chunk_sizes.split(",")]:
            kb = replace_kb(settings.kb, chunk_chars=chunk)
            chunked = settings.model_copy(update={"kb": kb})
            url = f"sqlite+aiosqlite:///{tmp}/tune-{chunk}.db"
            indexed = await index_store(chunked, url, folder, embedder)
            store = Store(url)
            try:
                for config in FUSIONS:
                    figures = await retrieval_run(chunked, retriever_for(kb, store, embedder, config), tune)
                    label = f"{chunk} chars, " + ", ".join(f"{k}={v}" for k, v in config.items())
                    tuning[label] = {**{k: figures[k] for k in ("recall@1", "recall@5", "recall@10", "mrr")},
                                     "chunks": indexed["chunks"]}  # fmt: skip
                    key = (figures["recall@5"] or 0.0, figures["mrr"] or 0.0)
                    # one search alone is shown for comparison; the product fuses both, so a fused rule is chosen
                    if config["fusion"] in ("rrf", "weighted") and (best is None or key > best[0]):
                        best = (key, chunk, config)
            finally:
                await store.aclose()
        show("retrieval on the tuning part", tuning)
        assert best is not None
        _, chunk, config = best
        console.print(f"chosen: chunk_chars={chunk}, {config}")
        kb = replace_kb(settings.kb, chunk_chars=chunk, **config)
        settings = settings.model_copy(update={"kb": kb})
        out["tuning_retrieval"], out["chosen_retrieval"] = tuning, {"chunk_chars": chunk, **config}

        # 1 + 3. each store, indexed with the chosen chunking; retrieval on the report part
        stores = {"sqlite (embedded)": f"sqlite+aiosqlite:///{tmp}/report.db"}
        if args.postgres:
            stores["postgres + pgvector"] = args.postgres
        measured: dict[str, dict[str, Any]] = {}
        for name, url in stores.items():
            if not url.startswith("sqlite"):
                from alembic import command

                from assistant.store.migrations.migrate import alembic_config

                await asyncio.to_thread(command.downgrade, alembic_config(url), "base")
            indexed = await index_store(settings, url, folder, embedder)
            store = Store(url)
            try:
                retriever = retriever_for(kb, store, embedder, config)
                await retriever.retrieve("warm up")
                figures = await retrieval_run(settings, retriever, report)
            finally:
                await store.aclose()
            measured[name] = {**indexed, **{k: figures[k] for k in RETRIEVAL_SHOWN}}
        embed_ms = []
        for case in report.cases[:100]:
            started = time.perf_counter()
            embedder.embed([case.message])
            embed_ms.append((time.perf_counter() - started) * 1000)
        out["query_embedding_p50_ms"] = round(median(embed_ms), 2)
        out["peak_rss_mb"] = round(psutil.Process().memory_info().rss / 2**20, 1)
        show(f"retrieval on the report part ({args.part}); added to a turn = retrieval p50", measured)
        console.print(
            f"query embedding alone: p50 {out['query_embedding_p50_ms']} ms; process RSS {out['peak_rss_mb']} MB"
        )
        out["retrieval"] = measured

        if not args.no_answers:
            store = Store(stores["sqlite (embedded)"])
            try:
                retriever = retriever_for(kb, store, embedder, config)
                model = settings.default_llm_model
                columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
                with Progress(*columns, console=console) as bar:
                    tune_rows = await answers(settings, retriever, tune, model, True, bar)
                    chosen, tune_figures = kb_eval.calibrate(tune_rows, kb)
                    report_rows = await answers(settings, retriever, report, model, True, bar)
                    baseline_rows = await answers(settings, retriever, report, model, False, bar)
            finally:
                await store.aclose()
            picked = {"answer": chosen.answer, "sentence_weight": chosen.sentence_weight, "min_score": chosen.min_score,
                      "min_support": chosen.min_support, "min_answer_words": chosen.min_answer_words}  # fmt: skip
            console.print(f"chosen on the tuning part: {picked} (tuning figures {kb_eval.rounded(tune_figures)})")
            results = judged(report_rows, chosen, embedder)
            grounded_figures = kb_eval.answer_figures(results)
            base = ungrounded(baseline_rows)
            rows = {f"chosen: {chosen.answer} (report part)": grounded_figures}
            for mode in kb_eval.ANSWER_MODES:  # each mode at its own best settings on the tuning part
                best, _ = kb_eval.calibrate(tune_rows, kb, (mode,))
                rows[f"{mode} at its best (report part)"] = kb_eval.answer_figures(kb_eval.judge_raw(report_rows, best))
            rows["LLM without retrieval"] = base
            show("answers", {k: {n: v for n, v in f.items() if n in ANSWERS_SHOWN} for k, f in rows.items()})
            ratio = (grounded_figures["token_f1"] or 0) / base["token_f1"] if base["token_f1"] else None
            console.print(f"grounded token F1 / ungrounded: {_cell(ratio)} (target >= 2)")
            out["answers"] = {"chosen": picked, "tuning": tune_figures, "report": grounded_figures,
                              "baseline": base, "f1_ratio": ratio}  # fmt: skip
            out["rows"] = {name: [_row(r) for r in rows] for name, rows in
                           (("tune", tune_rows), ("report", report_rows), ("baseline", baseline_rows))}  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(out, indent=1, default=str))


if __name__ == "__main__":
    asyncio.run(main())
