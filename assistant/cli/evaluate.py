"""`assistant eval nlu`: the classifier's and the router's quality on a test set."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from assistant.cli.context import Context, command, transaction
from assistant.cli.terminal import console, fail
from assistant.contracts import ModelKind
from assistant.store import registry

eval_app = typer.Typer(help="Measure model quality.", no_args_is_help=True)


@command(eval_app, "nlu")
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
    from assistant.config import config_file
    from training.evaluate import Evaluation, run_eval, write_router_config
    from training.publish import nlu_trainer

    context = Context()
    settings = context.settings
    for path in (data, tune_on):
        if path is not None and not path.is_file():
            raise fail(f"{path} is not a file")
    if model is not None and url is not None:
        raise fail("give --model or --url, not both")
    out = out or settings.reports_dir / f"eval-{data.stem}"
    model_file = _model_file(context, model) if model is not None else None
    trainer = nlu_trainer(settings)

    async def evaluate() -> Evaluation:
        try:
            if model_file is not None:
                console.print(f"starting an NLU server for {model_file.name} …")
            async with trainer.evaluating(model_file, url) as backend:
                return await run_eval(settings, backend, data, out, tune_on, max_drop / 100)
        finally:
            await trainer.aclose()

    summary = asyncio.run(evaluate())
    metrics = summary.metrics
    if not metrics["examples"]:
        raise fail(f"{data} has no NLU examples")
    table = Table(title=f"NLU on {data.name}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in ("examples", "in_scope_accuracy", "macro_f1", "oos_recall", "oos_precision"):
        value = metrics[name]
        table.add_row(name, "-" if value is None else f"{value:.4f}" if isinstance(value, float) else str(value))
    console.print(table)
    if summary.tuning:
        best = summary.tuning.best
        console.print(f"tuned on {tune_on}: threshold {best.threshold}, margin {best.margin}")
        if write_config:
            target = config_file()
            try:
                write_router_config(target, best.threshold, best.margin)
            except (OSError, ValueError) as exc:
                raise fail(f"could not write the tuned router settings to {target}: {exc}") from exc
            console.print(f"[green]✔[/] wrote router.confidence_threshold and router.ambiguity_margin to {target}")
            overriding = [v for v in os.environ if v.upper().startswith("ASSISTANT_ROUTER__")]
            if overriding:
                console.print(f"[yellow]note:[/] {', '.join(overriding)} in the environment still override the file")
    console.print(f"report: {out / 'report.md'}")


def _model_file(context: Context, model: str) -> Path:
    """``--model``: a trained model file, or a version from the registry."""
    if model.endswith(".tar.gz"):
        path = Path(model)
        if not path.is_file():
            raise fail(f"{path} is not a file")
        return path.resolve()  # Rasa runs in another working directory

    record = transaction(context, lambda conn: registry.get(conn, model))
    if record.kind != ModelKind.NLU:
        raise fail(f"{model} is not an NLU model version (see `assistant models list --kind nlu`)")
    if not record.path or not Path(record.path).is_file():
        raise fail(f"the model file of {model} is gone ({record.path})")
    return Path(record.path)


def register(app: typer.Typer) -> None:
    app.add_typer(eval_app, name="eval")
