"""`assistant retrain`, `export`, `review` and `models`: the commands that make the assistant learn from
its log. Registered on the main Typer app by ``assistant.cli``."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path
from types import FrameType
from typing import Annotated, Any, TypeVar

import psutil
import typer
from rich.table import Table

from assistant.config import Settings
from assistant.terminal import console, err, fail

T = TypeVar("T")
models_app = typer.Typer(help="The model registry: list, activate, roll back.", no_args_is_help=True)


def run_with_store(work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(store)`` on a fresh event loop with the configured store (schema migrated; closed after)."""
    from assistant.migrations.migrate import upgrade
    from assistant.store import Store

    url = Settings().db_url
    upgrade(url)

    async def main() -> T:
        store = Store(url)
        try:
            return await work(store)
        finally:
            await store.aclose()

    return asyncio.run(main())


def _stop_children(_signum: int, _frame: FrameType | None) -> None:
    """SIGTERM: stop the training processes we started, then unwind (the run is marked failed)."""
    for child in psutil.Process().children(recursive=True):
        child.kill()
    raise KeyboardInterrupt


def retrain(
    nlu_only: Annotated[bool, typer.Option("--nlu-only", help="retrain only the NLU model")] = False,
    llm_only: Annotated[bool, typer.Option("--llm-only", help="retrain only the LoRA adapter")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="export and say what would be trained; change nothing")
    ] = False,
    min_new: Annotated[int, typer.Option(help="do nothing unless this many new labels/feedback items exist")] = 0,
    epochs: Annotated[
        int | None, typer.Option(help="DIET epochs for a full NLU train (default: the bot's config)")
    ] = None,
    llm_epochs: Annotated[int | None, typer.Option(help="LoRA epochs (default: settings.training.llm_epochs)")] = None,
    auto_label_confidence: Annotated[
        float | None, typer.Option(help="also train the NLU on intent turns at least this confident")
    ] = None,
    scrub: Annotated[bool, typer.Option(help="mask e-mail addresses and phone numbers in SFT data")] = True,
) -> None:
    """Retrain from the log: export, train both models, evaluate, promote only what is better, hot-swap it."""
    from training.retrain import Retrain, RetrainError, RetrainOptions

    if nlu_only and llm_only:
        raise fail("--nlu-only and --llm-only exclude each other; leave both out to retrain both")
    options = RetrainOptions(
        nlu=not llm_only,
        llm=not nlu_only,
        dry_run=dry_run,
        min_new=min_new,
        nlu_epochs=epochs,
        llm_epochs=llm_epochs,
        auto_label_confidence=auto_label_confidence,
        scrub=scrub,
    )
    from assistant.migrations.migrate import upgrade

    settings = Settings()
    upgrade(settings.db_url)
    signal.signal(signal.SIGTERM, _stop_children)
    try:
        result = asyncio.run(Retrain(settings, options, console).run())
    except RetrainError as exc:
        raise fail(str(exc)) from exc
    except KeyboardInterrupt as exc:
        raise fail("interrupted: the models being trained are marked failed; the active ones still serve", 130) from exc
    except Exception as exc:
        raise fail(f"retrain failed: {exc} (the active models still serve)") from exc
    for outcome in result.outcomes:
        colour = {"promoted": "green", "rejected": "yellow"}.get(outcome.status, "cyan")
        version = f" {outcome.version}" if outcome.version else ""
        console.print(f"[{colour}]{outcome.kind.upper()}: {outcome.status}{version}[/] - {outcome.reason}")
    if result.report:
        console.print(f"report: {result.report}")


def export(
    what: Annotated[str, typer.Argument(help="nlu or sft")],
    out: Annotated[Path, typer.Option(help="folder to write to")],
    auto_label_confidence: Annotated[
        float | None, typer.Option(help="NLU: add intent turns at least this confident")
    ] = None,
    scrub: Annotated[bool, typer.Option(help="SFT: mask e-mail addresses and phone numbers")] = True,
) -> None:
    """Export training data from the log: `nlu` (Rasa YAML) or `sft` (chat JSONL, train/validation)."""
    from training.export import export_nlu, export_sft

    if what not in ("nlu", "sft"):
        raise fail(f"cannot export {what!r}: choose nlu or sft")
    settings = Settings()
    if what == "nlu":
        data = run_with_store(lambda store: export_nlu(settings, store, out, auto_label_confidence))
        console.print(f"[green]✔[/] {data.train} ({data.counts['train_examples']} examples), {data.test} (held out)")
        for conflict in data.conflicts[:10]:
            console.print(f'[yellow]conflict[/] "{conflict["text"]}": {", ".join(conflict["sources"])}')
        counts = data.counts
    else:
        sft = run_with_store(lambda store: export_sft(settings, store, out, scrub=scrub))
        console.print(f"[green]✔[/] {sft.train} and {sft.validation}")
        counts = sft.counts
    console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in counts.items()))


@models_app.command("list")
def models_list(kind: Annotated[str | None, typer.Option(help="nlu or llm")] = None) -> None:
    """Every NLU model and LoRA adapter, with parent, status and headline metrics."""
    from assistant.store import registry

    async def read(store: Any) -> list[registry.ModelRecord]:
        return await store.transaction(lambda conn: registry.all_versions(conn, kind))

    table = Table(title="model registry")
    for column in ("version", "parent", "status", "metrics", "created", "data"):
        table.add_column(column)
    for record in run_with_store(read):
        style = {"active": "bold green", "rejected": "yellow", "failed": "red"}.get(record.status, "")
        table.add_row(
            record.version, record.parent or "-", f"[{style}]{record.status}[/]" if style else record.status,
            _headline(record.metrics), f"{record.created_at:%Y-%m-%d %H:%M}", record.data_hash or "-",
        )  # fmt: skip
    console.print(table)


def _headline(metrics: dict[str, Any] | None) -> str:
    if not metrics:
        return "-"
    if "candidate" in metrics:  # NLU
        m = metrics["candidate"]
        return f"acc {m['in_scope_accuracy'] or 0:.3f} F1 {m['macro_f1']:.3f} oos {m['oos_recall'] or 0:.3f}"
    return f"loss {metrics['candidate_loss']:.3f} (base {metrics['base_loss']:.3f})"


@models_app.command("activate")
def models_activate(version: Annotated[str, typer.Argument(help="e.g. nlu-0002 or llm-0003")]) -> None:
    """Serve this version now (hot-swapped into the running Rasa/vLLM servers)."""
    from assistant.store import registry

    settings = Settings()

    async def work(store: Any) -> None:
        record = await store.transaction(lambda conn: registry.get(conn, version))
        await _publish(settings, store, record.kind, record)

    try:
        run_with_store(work)
    except registry.UnknownVersion as exc:
        raise fail(str(exc)) from exc
    console.print(f"[green]✔[/] {version} is active")


@models_app.command("rollback")
def models_rollback(kind: Annotated[str, typer.Argument(help="nlu or llm")]) -> None:
    """Go back to the version that was active before the current one (for the LLM, possibly the base model)."""
    from assistant.store import registry

    if kind not in registry.KINDS:
        raise fail(f"cannot roll back {kind!r}: choose nlu or llm")
    settings = Settings()

    async def work(store: Any) -> str:
        current, target = await store.transaction(lambda conn: registry.rollback_target(conn, kind))
        if current is None:
            raise LookupError(f"no {kind} version is active: nothing to roll back")
        if target is None and kind == "nlu":
            raise LookupError(f"{current.version} is the first NLU model: there is nothing before it")
        await _publish(settings, store, kind, target)
        return f"{current.version} -> {target.version if target else 'the base model'}"

    try:
        change = run_with_store(work)
    except LookupError as exc:
        raise fail(str(exc)) from exc
    console.print(f"[green]✔[/] rolled back {kind}: {change}")


async def _publish(settings: Settings, store: Any, kind: str, record: Any) -> None:
    from training.publish import publish_llm, publish_nlu

    if kind == "nlu":
        await publish_nlu(settings, store, record, console)
    else:
        await publish_llm(settings, store, record)


def review(
    limit: Annotated[int, typer.Option(help="messages to go through")] = 50,
    below: Annotated[float | None, typer.Option(help="confidence under which a message is shown")] = None,
) -> None:
    """Label messages quickly: unlabelled user messages the router sent to the LLM or that had low confidence."""
    from training.review import pending, save_label

    settings = Settings()
    threshold = below if below is not None else settings.router.confidence_threshold
    items = run_with_store(lambda store: pending(store, threshold, limit))
    if not items:
        console.print("nothing to review: every low-confidence or LLM-routed message is labelled")
        return
    console.print(
        f"{len(items)} messages. For each: a number picks that intent from the ranking, a name sets any intent, "
        "Enter skips, q quits."
    )
    done = 0
    for item in items:
        console.rule(f"message {item.message_id} ({item.route}: {item.reason})")
        console.print(f"[bold]{item.text}[/]")
        for i, (name, confidence) in enumerate(item.ranking[:5], start=1):
            console.print(f"  {i}. {name} [dim]{confidence:.2f}[/]")
        try:
            answer = console.input("intent> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if answer == "q":
            break
        if not answer:
            continue
        intent = (
            item.ranking[int(answer) - 1][0] if answer.isdigit() and 0 < int(answer) <= len(item.ranking) else answer
        )
        try:
            run_with_store(lambda store, i=item, n=intent: save_label(store, i.message_id, n))
        except ValueError as exc:
            err.print(f"[red]{exc}[/]")
            continue
        done += 1
        console.print(f"[green]✔[/] labelled {intent}")
    console.print(f"{done} labelled; `assistant retrain` will learn from them")


eval_app = typer.Typer(help="Measure model quality.", no_args_is_help=True)


@eval_app.command("nlu")
def eval_nlu(
    data: Annotated[Path, typer.Option(help="Rasa-format test set (YAML)")],
    model: Annotated[
        str | None,
        typer.Option(help="a registered version (nlu-0003) or a trained .tar.gz; default: the running Rasa server"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="report folder; default var/reports/eval-<name>")] = None,
    url: Annotated[str | None, typer.Option(help="Rasa server to evaluate; default the configured one")] = None,
    tune_on: Annotated[Path | None, typer.Option(help="validation set: pick the threshold and margin on it")] = None,
    max_drop: Annotated[
        float,
        typer.Option(min=0, max=100, help="with --tune-on: points of in-scope accuracy the threshold may cost"),
    ] = 1.0,
    write_config: Annotated[
        bool, typer.Option(help="with --tune-on: store the chosen threshold and margin in the settings file")
    ] = True,
) -> None:
    """In-scope accuracy, macro-F1, per-intent report and the router's out-of-scope recall/precision."""
    import httpx

    from assistant.config import config_file
    from training.evaluate import run_eval, serving, write_router_config

    settings = Settings()
    for path in (data, tune_on):
        if path is not None and not path.is_file():
            raise fail(f"{path} is not a file")
    if model is not None and url is not None:
        raise fail("give --model or --url, not both")
    out = out or settings.reports_dir / f"eval-{data.stem}"
    model_file = _model_file(model) if model is not None else None
    try:
        if model_file is not None:
            console.print(f"starting a Rasa server for {model_file.name} …")
            with serving(settings, model_file) as model_url:
                summary = run_eval(settings, model_url, data, out, tune_on, max_drop / 100)
        else:
            summary = run_eval(settings, url or settings.rasa.url, data, out, tune_on, max_drop / 100)
    except ValueError as exc:
        raise fail(f"could not read the test set: {exc}") from exc
    except httpx.HTTPError as exc:
        raise fail(f"could not reach Rasa at {url or settings.rasa.url}: {exc}") from exc
    except RuntimeError as exc:  # the stand-in Rasa server did not come up
        raise fail(str(exc)) from exc
    metrics = summary["metrics"]
    if not metrics["examples"]:
        raise fail(f"{data} has no NLU examples")
    table = Table(title=f"NLU on {data.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in ("examples", "in_scope_accuracy", "macro_f1", "oos_recall", "oos_precision"):
        value = metrics[name]
        table.add_row(name, "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if summary["tuning"]:
        best = summary["tuning"]["best"]
        console.print(f"tuned on {tune_on}: threshold {best['threshold']}, margin {best['margin']}")
        if write_config:
            target = config_file()
            try:
                write_router_config(target, best["threshold"], best["margin"])
            except (OSError, ValueError) as exc:
                raise fail(f"could not write the tuned router settings to {target}: {exc}") from exc
            console.print(f"[green]✔[/] wrote router.confidence_threshold and router.ambiguity_margin to {target}")
            overriding = [v for v in os.environ if v.upper().startswith("ASSISTANT_ROUTER__")]
            if overriding:
                console.print(f"[yellow]note:[/] {', '.join(overriding)} in the environment still override the file")
    console.print(f"report: {out / 'report.md'}")


def _model_file(model: str) -> Path:
    """``--model``: a trained model file, or a version from the registry."""
    from assistant.store import registry

    if model.endswith(".tar.gz"):
        path = Path(model)
        if not path.is_file():
            raise fail(f"{path} is not a file")
        return path.resolve()  # Rasa runs in another working directory

    async def read(store: Any) -> registry.ModelRecord:
        return await store.transaction(lambda conn: registry.get(conn, model))

    try:
        record = run_with_store(read)
    except registry.UnknownVersion as exc:
        raise fail(str(exc)) from exc
    if record.kind != "nlu":
        raise fail(f"{model} is not an NLU model version (see `assistant models list --kind nlu`)")
    if not record.path or not Path(record.path).is_file():
        raise fail(f"the model file of {model} is gone ({record.path})")
    return Path(record.path)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
    app.command()(retrain)
    app.command()(export)
    app.command()(review)
    app.add_typer(models_app, name="models")
