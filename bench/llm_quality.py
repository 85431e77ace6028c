"""The LLM's reply quality under different generation settings, measured in one run (not a test).

1. **old settings**: the sampling the product shipped with before (temperature 0.7, 128 tokens, no
   repetition penalty, no stop sequence, no guards);
2. a small grid of sampling settings and guard limits, each run on the small-talk **tuning** part; the
   chosen one is the most similar to the references among those with at most 2% looping replies, every
   reply passing the behaviour checks that apply to all replies, and a median length within 2x the
   references';
3. **old** and **chosen** (and the active adapter, e.g. the starter adapter, with the chosen settings) on
   the **evaluation** parts: the figures to report. Nothing is chosen on them;
4. with ``--end-to-end``: what people get, every evaluation message through the real turn
   (``assistant eval replies``) with the served model, step by step: the LLM answering all small talk (no
   curated replies, no small-talk routing: the product before them), + curated replies, + small-talk
   routing (the defaults), + the two closest curated exchanges as examples in the LLM's prompt (off by
   default until this step shows a gain). Each step's figures by kind of message.

Needs ``assistant up`` (Rasa, vLLM, the database) at the configured URLs; the encoder runs in the Rasa
environment.

    .venv/bin/python bench/llm_quality.py [--limit N] [--adapter NAME] [--end-to-end] [--json out.json]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.config import Settings
from assistant.contracts import ModelKind
from assistant.store import Store, registry
from evaluation.llm import LLMEvaluation, evaluate_models, llm_backend
from evaluation.sets import load_sets

console = Console()
OLD = {"temperature": 0.7, "max_tokens": 128, "repetition_penalty": 1.0, "stop": [], "guards": False}
GRID = {
    "temperature": [0.3, 0.7],
    "repetition_penalty": [1.0, 1.1, 1.2],
    "max_sentences": [1, 2],
}
FIXED = {"max_tokens": 48, "stop": ["\n"], "guards": True}
COLUMNS = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
           TimeElapsedColumn())  # fmt: skip
TARGETS = "at most 2% looping replies, median length within 2x the references', 100% of behaviour checks passed"


def settings_with(base: Settings, **llm: Any) -> Settings:
    return base.model_copy(update={"llm": base.llm.model_copy(update=llm)})


def acceptable(run: LLMEvaluation) -> bool:
    for figures in run.sets:
        m = figures.metrics
        if (m["looping"] or 0) > 0.02 or (m["checks_passed"] or 0) < 1.0:
            return False
        if m.get("reference_words_median") and m["words_median"] > 2 * m["reference_words_median"]:
            return False
    return True


def similarity(run: LLMEvaluation) -> float:
    return sum(f.metrics.get("similarity") or 0 for f in run.sets if f.kind == "reference")


async def measure(settings: Settings, model: str, sets: list[Any], bar: Progress) -> LLMEvaluation:
    llm = llm_backend(settings)
    try:
        (run,) = await evaluate_models(settings, llm, [model], sets, bar)
        return run
    finally:
        await llm.aclose()


def row(name: str, run: LLMEvaluation) -> list[list[str]]:
    rows = []
    for f in run.sets:
        m = f.metrics
        reference = f" (ref {m['reference_words_median']:.0f})" if m.get("reference_words_median") else ""
        rows.append([
            name, f.name, f"{m.get('similarity') or 0:.3f}" if f.kind == "reference" else "-",
            f"{m['words_median']:.0f}{reference}",
            f"{m['words_p95']:.0f}", f"{m['looping']:.1%}", f"{m['checks_passed']:.1%}", f"{m['withheld']:.1%}",
            f"{m['tokens_per_s']:.1f}" if m.get("tokens_per_s") else "-",
        ])  # fmt: skip
    return rows


STEPS = {
    "LLM for all small talk": {"router": {"curated": False}, "kb": {"smalltalk_share": 2.0}, "llm": {"examples": 0}},
    "+ curated replies": {"router": {"curated": True}, "kb": {"smalltalk_share": 2.0}, "llm": {"examples": 0}},
    "+ small-talk routing": {"llm": {"examples": 0}},  # the defaults
    "+ curated examples in the prompt": {"llm": {"examples": 2}},
}
SHOWN = ("ok", "abstained", "business", "similarity", "cited", "declined", "words_median", "looping",
         "checks_passed")  # fmt: skip


def end_to_end(base: Settings, limit: int | None) -> dict[str, Any]:
    """Each step's figures by kind of message, every evaluation message through the real turn."""
    from evaluation import replies
    from evaluation.llm import embed
    from wiring.cli.evaluate import through_the_app

    sets = [s.limited(limit) for s in load_sets(base.llm_eval_sets, "eval")]
    figures: dict[str, Any] = {}
    for step, changes in STEPS.items():
        settings = base.model_copy(update={
            name: getattr(base, name).model_copy(update=values) for name, values in changes.items()})  # fmt: skip
        with Progress(*COLUMNS, console=console) as bar:
            task = bar.add_task(f"end to end: {step}", total=sum(len(s.cases) for s in sets), note="")
            judged = through_the_app(settings, sets, "bench-replies", False, lambda done, total, note, task=task: (
                bar.update(task, completed=done, total=total, note=note[-40:])))  # fmt: skip
        replies.add_similarity(judged, lambda texts: embed(base, texts))
        evaluation = replies.evaluate(judged)
        figures[step] = {"figures": evaluation.figures, "confusion": evaluation.confusion}
        if step == list(STEPS)[-1]:
            title = f"Replies, end to end: {step}"
            path = replies.write_report(base.reports_dir / "bench-replies", evaluation, title)
            console.print(f"the last step's report, with 20 replies side by side: {path}")
    table = Table(title="What people get, end to end, on the evaluation parts (served model)")
    for column in ("step", "kind", *SHOWN):
        table.add_column(column)
    for step, found in figures.items():
        for kind, m in found["figures"].items():
            table.add_row(step, kind, *("-" if m.get(n) is None else f"{m[n]:.3g}" for n in SHOWN))
    console.print(table)
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=None, help="cases per set (a stable sample)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--adapter", default=None, help="also measure this served adapter (default: the active one)")
    parser.add_argument("--end-to-end", action="store_true", help="only the end-to-end steps (assistant eval replies)")
    args = parser.parse_args()
    base = Settings()
    if args.end_to_end:
        results = end_to_end(base, args.limit)
        if args.json:
            args.json.write_text(json.dumps(results, indent=2))
        return
    tune = [s.limited(args.limit) for s in load_sets(base.llm_eval_sets, "tune")]
    report = [s.limited(args.limit) for s in load_sets(base.llm_eval_sets, "eval")]
    served = base.vllm.served_model_name
    results: dict[str, Any] = {"targets": TARGETS, "tuning": [], "evaluation": {}}
    with Progress(*COLUMNS, console=console) as bar:
        grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
        tried = []
        for point in grid:
            run = await measure(settings_with(base, **FIXED, **point), served, tune, bar)
            tried.append((point, run))
            results["tuning"].append({"settings": {**FIXED, **point}, "acceptable": acceptable(run),
                                      "sets": [asdict(f) for f in run.sets]})  # fmt: skip
        good = [(p, r) for p, r in tried if acceptable(r)] or tried
        chosen, _ = max(good, key=lambda pr: similarity(pr[1]))
        results["chosen"] = {**FIXED, **chosen}
        runs = {
            "old settings": await measure(settings_with(base, **OLD), served, report, bar),
            "chosen settings": await measure(settings_with(base, **FIXED, **chosen), served, report, bar),
        }
        store = Store(base.db_url)
        try:
            active = await store.transaction(lambda conn: registry.active(conn, ModelKind.LLM))
        except Exception:  # no database yet: no adapter either
            active = None
        finally:
            await store.aclose()
        adapter = args.adapter or (active.version if active else None)
        if adapter is not None:
            runs[f"chosen + {adapter}"] = await measure(settings_with(base, **FIXED, **chosen), adapter, report, bar)
    table = Table(title="LLM reply quality on the evaluation parts (settings chosen on the tuning part)")
    for column in ("run", "set", "similarity", "words median", "p95", "looping", "checks passed", "withheld", "tok/s"):
        table.add_column(column)
    for name, run in runs.items():
        for cells in row(name, run):
            table.add_row(*cells)
        results["evaluation"][name] = [asdict(f) for f in run.sets]
    console.print(f"chosen on the tuning part: {results['chosen']}")
    console.print(table)
    console.print(f"targets: {TARGETS}; met by the chosen settings: {acceptable(runs['chosen settings'])}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
