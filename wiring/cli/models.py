"""`assistant models list|activate|rollback`: the model registry."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.table import Table

from assistant.config import Settings
from assistant.contracts import AssistantError, ModelKind
from assistant.store import Store, registry
from wiring.cli.context import Context, command, transaction
from wiring.cli.terminal import console, fail

models_app = typer.Typer(help="The model registry: list, activate, roll back.", no_args_is_help=True)


@command(models_app, "list")
def models_list(kind: Annotated[ModelKind | None, typer.Option(help="nlu or llm")] = None) -> None:
    """Every NLU model and LoRA adapter, with parent, status and headline metrics."""
    table = Table(title="model registry")
    for column in ("version", "parent", "status", "metrics", "created", "data"):
        table.add_column(column)
    for record in transaction(Context(), lambda conn: registry.all_versions(conn, kind)):
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
    loss = f"loss {metrics['candidate_loss']:.3f} (base {metrics['base_loss']:.3f})"
    gate = metrics.get("gate")
    if gate is None:
        return loss
    return f"gate {'passed' if gate['passed'] else 'FAILED: ' + ', '.join(gate['failed'][:3])}; {loss}"


@command(models_app, "activate")
def models_activate(
    version: Annotated[str, typer.Argument(help="e.g. nlu-0002 or llm-0003")],
    force: Annotated[bool, typer.Option(help="serve it even though it failed its evaluation (the gate)")] = False,
) -> None:
    """Serve this version now (hot-swapped into the running NLU/LLM servers). A version that failed its
    evaluation is refused unless --force."""
    context = Context()

    async def work(store: Store) -> None:
        record = await store.transaction(lambda conn: registry.get(conn, version))
        if record.status == registry.FAILED:
            raise AssistantError(
                f"{version} failed while it was made ({record.error or 'no files'}): it cannot be served"
            )
        if _failed_gate(record) and not force:
            raise AssistantError(
                f"{version} failed its evaluation: {record.error or 'rejected'}. Use --force to serve it anyway"
            )
        await _publish(context.settings, store, record.kind, record)

    context.run(work)
    console.print(f"[green]✔[/] {version} is active")


@command(models_app, "rollback")
def models_rollback(kind: Annotated[str, typer.Argument(help="nlu or llm")]) -> None:
    """Go back to the version that was active before the current one (for the LLM, possibly the base model)."""
    if kind not in registry.KINDS:
        raise fail(f"cannot roll back {kind!r}: choose nlu or llm")
    model_kind = ModelKind(kind)
    context = Context()

    async def work(store: Store) -> str:
        current, target = await store.transaction(lambda conn: registry.rollback_target(conn, model_kind))
        if current is None:
            raise AssistantError(f"no {kind} version is active: nothing to roll back")
        if target is None and model_kind == ModelKind.NLU:
            raise AssistantError(f"{current.version} is the first NLU model: there is nothing before it")
        await _publish(context.settings, store, model_kind, target)
        return f"{current.version} -> {target.version if target else 'the base model'}"

    change = context.run(work)
    console.print(f"[green]✔[/] rolled back {kind}: {change}")


def _failed_gate(record: registry.ModelRecord) -> bool:
    gate = (record.metrics or {}).get("gate") or {}
    return record.status == registry.REJECTED or gate.get("passed") is False


async def _publish(settings: Settings, store: Store, kind: ModelKind, record: registry.ModelRecord | None) -> None:
    from training.publish import model_server, publish

    server = model_server(settings, kind)
    try:
        await publish(settings, store, server, kind, record)
    finally:
        await server.aclose()


def register(app: typer.Typer) -> None:
    app.add_typer(models_app, name="models")
