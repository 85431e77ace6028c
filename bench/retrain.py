"""Wall time and peak memory of each `assistant retrain` stage, for the demo bot and for CLINC150 (not a test).

Runs in its own data folder and database, without a running stack: the active NLU model is first trained
from scratch (stage ``initial_nlu_train``), labels and LLM corrections are written into the log, then a
real retrain runs (Rasa fine-tuning, stand-in evaluation, LoRA training). Peak memory counts this process
and every process it started (Rasa, the stand-in Rasa servers, the LoRA trainer).

    .venv/bin/python bench/retrain.py --bot demo
    .venv/bin/python bench/retrain.py --bot clinc150 --epochs 5 --labels 600   # ../shared/data/clinc150

Prints a table and, with --json FILE, writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import shutil
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from assistant.infra.services import free_port

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared" / "data"
console = Console()


def free_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


def examples(path: Path) -> list[tuple[str, str]]:
    from evaluation.nlu_data import read_rasa_nlu

    return [(example.text, example.intent) for example in read_rasa_nlu([path])[0]]


def clinc_bot(folder: Path, epochs: int, labels: int) -> tuple[Path, list[tuple[str, str]]]:
    """A bot folder for CLINC150: train.yml as its data, a third of val.yml as its test examples; returns
    the folder and ``labels`` other val examples to write into the log as human labels."""
    bot = folder / "clinc150-bot"
    (bot / "data").mkdir(parents=True, exist_ok=True)
    (bot / "tests").mkdir(parents=True, exist_ok=True)
    config = yaml.safe_load((REPO / "bots" / "demo" / "config.yml").read_text())
    for component in config["pipeline"]:
        if component["name"] == "DIETClassifier":
            component["epochs"] = epochs
    (bot / "config.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    shutil.copy(SHARED / "clinc150" / "train.yml", bot / "data" / "nlu.yml")
    for name in ("domain.yml", "persona.md"):
        shutil.copy(REPO / "bots" / "demo" / name, bot / name)
    val = examples(SHARED / "clinc150" / "val.yml")
    tests, rest = val[::3], [e for i, e in enumerate(val) if i % 3]
    by_intent: dict[str, list[str]] = {}
    for text, intent in tests:
        by_intent.setdefault(intent, []).append(text)
    items = [{"intent": i, "examples": "".join(f"- {t}\n" for t in texts)} for i, texts in by_intent.items()]
    (bot / "tests" / "test.yml").write_text(yaml.safe_dump({"version": "3.1", "nlu": items}, sort_keys=False))
    return bot, rest[:: max(1, len(rest) // labels)][:labels]


def demo_labels() -> list[tuple[str, str]]:
    wallet = ["how many stars are in my wallet", "show my wallet stars", "do I have wallet stars",
              "stars in my wallet please", "count my wallet stars", "what is my star count in the wallet"]  # fmt: skip
    return [(text, "loyalty_points") for text in wallet]


def persona_pairs(count: int) -> list[tuple[str, str]]:
    with (SHARED / "personality_chat" / "Queries_Responses_Humorous_QnAMaker.tsv").open() as tsv:
        rows = list(csv.reader(tsv, delimiter="\t"))[1:]
    return [(q.strip(), a.strip()) for q, a, *_ in rows[::3] if q.strip() and a.strip()][:count]


async def seed(settings: Any, labels: list[tuple[str, str]], corrections: list[tuple[str, str]]) -> None:
    """Write labelled user messages and corrected LLM replies into the log, as the admin API would."""
    from assistant.contracts import Reason, Route
    from assistant.store import ReplyRecord, Store, Understanding, feedback

    store = Store(settings.db_url)
    try:
        for n, (text, intent) in enumerate(labels):
            turn = await store.begin_turn("bench", f"labels-{n % 50}", text, None)
            await store.finish_turn(
                turn,
                Understanding(Route.LLM, Reason.LOW_CONFIDENCE),
                ReplyRecord("?", Route.LLM, Reason.LOW_CONFIDENCE),
                None,
            )
            await store.transaction(lambda c, m=turn.message_id, i=intent: feedback.set_label(c, m, i, []))
        for n, (question, answer) in enumerate(corrections):
            turn = await store.begin_turn("bench", f"persona-{n}", question, None)
            understood = Understanding(Route.LLM, Reason.LLM_INTENT)
            bot = await store.finish_turn(turn, understood, ReplyRecord("Hm.", Route.LLM, Reason.LLM_INTENT), None)
            await store.transaction(lambda c, b=bot, a=answer: feedback.add_feedback(c, b, "down", a))
    finally:
        await store.aclose()


async def bench(bot: str, epochs: int, llm_epochs: int, labels: int, corrections: int) -> dict[str, Any]:
    folder = REPO / "var" / "bench" / f"retrain-{bot}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if bot == "clinc150":
        bot_dir, label_rows = clinc_bot(folder, epochs, labels)
        os.environ["ASSISTANT_ROUTER__LLM_INTENTS"] = '["oos"]'
    else:
        bot_dir, label_rows = REPO / "bots" / "demo", demo_labels()
    os.environ.update(
        {
            "ASSISTANT_DATA_DIR": str(folder),
            "ASSISTANT_BOT_DIR": str(bot_dir),
            "ASSISTANT_CONFIG": str(folder / "none.yml"),
            "ASSISTANT_RASA__URL": free_url(),  # nothing there: evaluation uses stand-in servers
            "ASSISTANT_VLLM__URL": free_url(),
            "ASSISTANT_PORT": "9",
        }
    )
    from assistant.config import Settings
    from assistant.store import Store
    from assistant.store.migrations.migrate import upgrade
    from training.publish import nlu_trainer, serving_nlu_model
    from training.retrain import Retrain, RetrainOptions
    from training.stages import StageTimes

    settings = Settings()
    await asyncio.to_thread(upgrade, settings.db_url)  # alembic runs its own event loop
    initial = StageTimes()
    with initial.stage("initial_nlu_train"):
        store = Store(settings.db_url)
        await serving_nlu_model(settings, store, nlu_trainer(settings), console)
        await store.aclose()
    await seed(settings, label_rows, persona_pairs(corrections))
    result = await Retrain(settings, RetrainOptions(llm_epochs=llm_epochs), console).run()
    llm = next((o for o in result.outcomes if o.kind == "llm"), None)
    return {
        "bot": bot,
        "labels": len(label_rows),
        "corrections": corrections,
        "cpu_cores": os.cpu_count(),
        "stages": {**initial.stages, **result.stages},
        "outcomes": [
            {"kind": o.kind, "status": o.status, "version": o.version, "reason": o.reason} for o in result.outcomes
        ],
        "nlu_metrics": next((o.metrics for o in result.outcomes if o.kind == "nlu"), None),
        "lora_train_tokens_per_s": llm.metrics.get("train_tokens_per_s") if llm else None,
        "report": str(result.report),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bot", choices=["demo", "clinc150"], default="demo")
    parser.add_argument("--epochs", type=int, default=5, help="CLINC150: DIET epochs of the initial full train")
    parser.add_argument("--llm-epochs", type=int, default=3)
    parser.add_argument("--labels", type=int, default=600, help="CLINC150: val examples written as human labels")
    parser.add_argument("--corrections", type=int, default=24, help="persona corrections for the LoRA adapter")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    figures = asyncio.run(bench(args.bot, args.epochs, args.llm_epochs, args.labels, args.corrections))
    table = Table(title=f"retrain stages: {args.bot} ({figures['cpu_cores']} CPU cores)")
    for column in ("stage", "seconds", "peak MiB"):
        table.add_column(column)
    for name, stage in figures["stages"].items():
        table.add_row(name, f"{stage['seconds']:.1f}", f"{stage['peak_mib']:.0f}")
    console.print(table)
    for outcome in figures["outcomes"]:
        console.print(f"{outcome['kind']}: {outcome['status']} {outcome['version'] or ''} - {outcome['reason']}")
    if figures["lora_train_tokens_per_s"]:
        console.print(f"LoRA training: {figures['lora_train_tokens_per_s']:.0f} tokens/s")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
