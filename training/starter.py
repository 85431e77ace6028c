"""The starter adapter: the small base model does not stay in the demo's persona by prompt and settings
alone (``bench/llm_quality.py`` shows it), so on first start a LoRA adapter is trained on the bot's own
persona data — ``persona_examples.yml`` and the small-talk *tuning* part (never the evaluation part) —
checked by the same gate as every retrained adapter, and registered as the first LLM version.

Trained once per base model, persona and data: the adapter is cached (``$ASSISTANT_CACHE/adapters``,
beside the environments), so a second clone or a fresh database takes a minute, not a training.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from assistant.config import Settings
from assistant.contracts import AssistantError, ModelKind
from assistant.domain import Domain
from assistant.infra.services import cache_root
from assistant.store import Store, registry
from evaluation.sets import load_set, load_sets
from training.llm_gate import run_gate
from training.lora import train_adapter
from training.publish import model_server, publish

EXAMPLES_FILE = "persona_examples.yml"
VALIDATION_EVERY = 10  # every 10th example measures the held-out loss


@dataclass(frozen=True)
class StarterData:
    pairs: list[tuple[str, str]]  # (message, reply)
    sources: list[str]


def starter_data(settings: Settings) -> StarterData:
    """The bot's persona examples and its reference sets of part ``tune`` (or the files in
    ``llm.starter_data``: persona-example files, ``examples: [{message, reply}]``, or reference sets)."""
    files = list(settings.llm.starter_data)
    if not files:
        files = [settings.bot_dir / EXAMPLES_FILE] if (settings.bot_dir / EXAMPLES_FILE).is_file() else []
        with contextlib.suppress(AssistantError):  # no tuning sets: the persona examples alone
            files += [s.path for s in load_sets(settings.llm_eval_sets, "tune") if s.kind == "reference"]
    pairs: list[tuple[str, str]] = []
    for path in files:
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise AssistantError(f"cannot read the starter adapter's data {path}: {exc}") from exc
        if isinstance(data, dict) and "examples" in data:
            items = data.get("examples") or []
            pairs += [(str(i["message"]), str(i["reply"])) for i in items if i.get("message") and i.get("reply")]
        else:
            pairs += [(c.message, str(c.reference)) for c in load_set(path).cases if c.reference]
    return StarterData(pairs, [str(f) for f in files])


def _key(settings: Settings, persona: str, data: StarterData) -> str:
    cfg = settings.training
    parts = [
        Path(str(settings.vllm.base_model)).name, persona, json.dumps(data.pairs), str(settings.llm.starter_epochs),
        str(cfg.llm_lora_rank), str(cfg.llm_lora_alpha), str(cfg.llm_learning_rate), str(cfg.llm_max_length),
    ]  # fmt: skip
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def _write(path: Path, persona: str, pairs: list[tuple[str, str]]) -> None:
    rows = []
    for message, reply in pairs:
        chat = [{"role": "system", "content": persona}] if persona else []
        chat += [{"role": "user", "content": message}, {"role": "assistant", "content": reply}]
        rows.append(json.dumps({"messages": chat}, ensure_ascii=False))
    path.write_text("\n".join(rows) + "\n")


async def ensure_starter(settings: Settings, store: Store, console: Console) -> str | None:
    """Train (or take from the cache), gate and register the starter adapter, unless the registry already
    has an LLM version that did not fail (then the registry decides what is served). Returns a sentence of
    what happened."""
    if not settings.llm.starter_adapter:
        return None
    versions = await store.transaction(lambda conn: registry.all_versions(conn, ModelKind.LLM))
    if [v for v in versions if v.status != registry.FAILED]:
        return None
    server = model_server(settings, ModelKind.LLM)
    try:
        if not server.serves_versions:
            return None
        return await _starter(settings, store, server, console)
    finally:
        await server.aclose()


async def _starter(settings: Settings, store: Store, server: Any, console: Console) -> str:
    persona = Domain.load(settings.bot_dir).persona
    data = starter_data(settings)
    if len(data.pairs) < 2 * VALIDATION_EVERY:
        return f"no starter adapter: the bot has {len(data.pairs)} persona examples, fewer than {2 * VALIDATION_EVERY}"
    cached = cache_root() / "adapters" / f"starter-{_key(settings, persona, data)}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn())  # fmt: skip
    record = await store.transaction(
        lambda conn: registry.register(conn, ModelKind.LLM, data_hash=cached.name.removeprefix("starter-"))
    )
    try:
        with Progress(*columns, console=console) as bar:
            if not (cached / "metrics.json").is_file():
                await _train(settings, persona, data, cached, bar)
            out = settings.adapters_dir / record.version
            shutil.rmtree(out, ignore_errors=True)
            shutil.copytree(cached, out)
            metrics: dict[str, Any] = json.loads((cached / "metrics.json").read_text())
            metrics["starter"] = {"sources": data.sources, "examples": len(data.pairs)}
            await store.transaction(lambda conn: registry.update_version(conn, record.version, path=str(out)))
            current = await store.transaction(lambda conn: registry.get(conn, record.version))
            report_dir = settings.reports_dir / f"starter-{record.version}"
            checked = await run_gate(settings, server, current, settings.default_llm_model, bar, report_dir)
        metrics.update(checked.metrics)
        if not checked.result.passed:
            error = checked.result.reason()
            await store.transaction(
                lambda conn: registry.update_version(
                    conn, record.version, status=registry.REJECTED, metrics=metrics, error=error
                )
            )
            return f"the starter adapter {record.version} {error}; the base model stays ({checked.report})"
        await store.transaction(
            lambda conn: registry.update_version(conn, record.version, status=registry.CANDIDATE, metrics=metrics)
        )
        current = await store.transaction(lambda conn: registry.get(conn, record.version))
        await publish(settings, store, server, ModelKind.LLM, current)
        return f"the starter adapter {record.version} is active: {checked.result.reason()} ({checked.report})"
    except BaseException as exc:
        error = str(exc) or repr(exc)
        await asyncio.shield(
            store.transaction(
                lambda conn: registry.update_version(conn, record.version, status=registry.FAILED, error=error)
            )
        )
        raise


async def _train(settings: Settings, persona: str, data: StarterData, cached: Path, bar: Progress) -> None:
    work = cached.with_name(cached.name + ".training")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    validation = data.pairs[::VALIDATION_EVERY]
    train = [p for i, p in enumerate(data.pairs) if i % VALIDATION_EVERY]
    _write(work / "train.jsonl", persona, train)
    _write(work / "validation.jsonl", persona, validation)
    task = bar.add_task(f"starter adapter: LoRA on {len(train)} persona examples (once)", total=100, note="")

    def progress(done: int, total: int, note: str) -> None:
        bar.update(task, completed=done, total=total, note=note)

    result = await asyncio.to_thread(
        train_adapter, settings, work / "train.jsonl", work / "validation.jsonl", work / "adapter", None,
        settings.llm.starter_epochs, progress,
    )  # fmt: skip
    (work / "adapter" / "metrics.json").write_text(json.dumps({**result.metrics, "curve": result.curve[-50:]}))
    shutil.rmtree(cached, ignore_errors=True)
    (work / "adapter").rename(cached)
    shutil.rmtree(work, ignore_errors=True)
