"""`assistant eval nlu|llm`: the classifier's and the router's quality on a test set; the LLM's replies on
the bot's evaluation sets."""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from assistant.config import Settings
from assistant.contracts import ModelKind
from assistant.store import registry
from wiring.cli.context import Context, command, transaction
from wiring.cli.terminal import console, fail

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
    from evaluation.nlu import Evaluation, run_eval, write_router_config
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


@command(eval_app, "llm")
def eval_llm(
    model: Annotated[
        str | None, typer.Option(help="a registered adapter (llm-0002) or `base`; default: the active model")
    ] = None,
    against: Annotated[
        str | None,
        typer.Option(help="compare with this model (`base`, a version, or `none`); default: the active model"),
    ] = None,
    data: Annotated[
        list[Path] | None, typer.Option(help="evaluation set files or folders; default: the bot's evals/")
    ] = None,
    part: Annotated[str, typer.Option(help="eval (report), tune (choose settings on), or all")] = "eval",
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many cases per set (a stable sample)")] = None,
    out: Annotated[Path | None, typer.Option(help="report folder; default var/reports/eval-llm-<model>")] = None,
) -> None:
    """The LLM's replies measured on the evaluation sets, through the served model by the live path:
    similarity to references, token F1, length, loops, behaviour checks, guards, speed."""
    from evaluation.llm import evaluate_models, llm_backend, write_report
    from evaluation.sets import load_sets
    from training.publish import model_server, version_of

    context = Context()
    settings = context.settings
    if part not in ("eval", "tune", "all"):
        raise fail(f"--part {part!r}: choose eval, tune or all")
    sets = [s.limited(limit or settings.training.llm_eval_limit) for s in
            load_sets(data or settings.llm_eval_sets, None if part == "all" else part)]  # fmt: skip
    active = transaction(context, lambda conn: registry.active(conn, ModelKind.LLM))
    base = settings.vllm.served_model_name
    active_name = active.version if active else settings.default_llm_model

    def record_of(name: str) -> registry.ModelRecord | None:
        if name in ("base", base):
            return None
        record = transaction(context, lambda conn: registry.get(conn, name))
        if record.kind != ModelKind.LLM:
            raise fail(f"{name} is not an LLM adapter (see `assistant models list --kind llm`)")
        return record

    candidate_name = model or active_name
    compare_name = None if against == "none" else (against or active_name)
    if compare_name in (candidate_name, "base" if candidate_name == base else None):
        compare_name = None
    names = [n for n in (candidate_name, compare_name) if n is not None]
    records = {name: record_of(name) for name in names}
    out = out or settings.reports_dir / f"eval-llm-{candidate_name}"
    server = model_server(settings, ModelKind.LLM)
    llm = llm_backend(settings)

    async def evaluate() -> list[Any]:
        try:
            for record in records.values():  # an adapter must be loaded to be asked
                if record is not None and server.serves_versions:
                    await server.serve(version_of(record), _no_reroute)
            served = [records[name].version if records[name] else base for name in names]
            columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[note]}"), TimeElapsedColumn())  # fmt: skip
            with Progress(*columns, console=console) as bar:
                return await evaluate_models(settings, llm, served, sets, bar)
        finally:
            await asyncio.gather(llm.aclose(), server.aclose())

    try:
        evaluations = asyncio.run(evaluate())
    except httpx.HTTPError as exc:
        raise fail(
            f"the LLM server at {settings.vllm.url} did not answer ({exc!r}); is `assistant up` running?"
        ) from exc
    candidate, other = evaluations[0], (evaluations[1] if len(evaluations) > 1 else None)
    path = write_report(out, candidate, other, f"LLM evaluation: {candidate.model}")
    table = Table(title=f"LLM {candidate.model}" + (f" vs {other.model}" if other else ""))
    columns = ("set", "similarity", "token F1", "words (median/p95)", "looping", "checks passed", "withheld",
               "abstained (unanswerable/answerable)")  # fmt: skip
    for column in columns:
        table.add_column(column)
    for figures in candidate.sets:
        m = figures.metrics
        abstained = f"{_num(m['abstention_recall'])}/{_num(m.get('over_refusal'))}" if "abstention_recall" in m else "-"
        table.add_row(
            figures.name, _num(m.get("similarity")), _num(m.get("token_f1")),
            f"{_num(m.get('words_median'), 0)}/{_num(m.get('words_p95'), 0)}", _num(m.get("looping")),
            _num(m.get("checks_passed")), _num(m.get("withheld")), abstained,
        )  # fmt: skip
    console.print(table)
    console.print(f"report: {path}")


@command(eval_app, "replies")
def eval_replies(
    data: Annotated[
        list[Path] | None, typer.Option(help="evaluation set files or folders; default: the bot's evals/")
    ] = None,
    part: Annotated[str, typer.Option(help="eval (report), tune (choose settings on), or all")] = "eval",
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many cases per set (a stable sample)")] = None,
    keep: Annotated[
        bool, typer.Option(help="keep the evaluation's conversations in the log (default: erased)")
    ] = False,
    out: Annotated[Path | None, typer.Option(help="report folder; default var/reports/eval-replies")] = None,
) -> None:
    """Every evaluation message through the real turn (the REST channel of an app built here, on the
    configured NLU, LLM, knowledge base and database), each reply judged by the kind of message: small talk
    (never abstained, never a business answer; similarity), document questions (answered, cited), requests to
    decline (declined); the route of each, a kind x route table and 20 replies side by side."""
    from evaluation import replies
    from evaluation.llm import embed
    from evaluation.sets import load_sets

    context = Context()
    settings = context.settings
    if part not in ("eval", "tune", "all"):
        raise fail(f"--part {part!r}: choose eval, tune or all")
    sets = [s.limited(limit) for s in load_sets(data or settings.llm_eval_sets, None if part == "all" else part)]
    prefix = f"eval-{uuid.uuid4().hex[:8]}"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as bar:
        task = bar.add_task("replies, end to end", total=sum(len(s.cases) for s in sets), note="")
        judged = through_the_app(settings, sets, prefix, keep, lambda done, total, note: bar.update(
            task, completed=done, total=total, note=note[-40:]))  # fmt: skip
    replies.add_similarity(judged, lambda texts: embed(settings, texts))
    evaluation = replies.evaluate(judged)
    names = ", ".join(f"{s.name} ({s.part})" for s in sets)
    path = replies.write_report(
        out or settings.reports_dir / "eval-replies", evaluation, "Replies, end to end",
        f"{len(judged)} messages from {names}, each a new conversation on the REST channel; LLM "
        f"{_served_llm(context)}; NLU at {settings.rasa.url}.",
    )  # fmt: skip
    table = Table(title="replies by kind of message")
    for column in ("kind", "cases", "ok", "abstained", "business", "similarity", "cited", "declined", "checks"):
        table.add_column(column)
    for kind, m in evaluation.figures.items():
        table.add_row(kind, str(int(m["cases"] or 0)), *(_num(m.get(n)) for n in
                      ("ok", "abstained", "business", "similarity", "cited", "declined", "checks_passed")))  # fmt: skip
    console.print(table)
    console.print(f"report: {path}")


def through_the_app(settings: Settings, sets: list[Any], prefix: str, keep: bool, progress: Any) -> list[Any]:
    """The app built in this process (its lifespan: the configured backends, store, knowledge base, actions),
    driven through its REST channel's stream; the per-client rate limits are off for this one client. The
    evaluation's conversations are erased afterwards unless ``keep``."""
    from fastapi.testclient import TestClient

    from assistant.domain import Domain
    from assistant.replies.checks import CheckContext
    from assistant.store import purge
    from evaluation import replies
    from wiring.app import create_app

    unlimited = settings.limits.model_copy(update={"per_sender": "", "per_address": ""})
    app = create_app(settings.model_copy(update={"limits": unlimited}))
    domain = Domain.load(settings.bot_dir)
    written = " ".join(v.get("text", "") for variants in domain.responses.values() for v in variants)
    checks = CheckContext(system_prompt=domain.persona, allowed_text=f"{domain.persona} {written}",
                          max_words=settings.llm.max_words)  # fmt: skip
    senders: list[str] = []
    with TestClient(app) as client:

        async def respond(sender: str, message: str) -> replies.Answer:
            senders.append(sender)
            return replies.Answer.of_event(await asyncio.to_thread(_stream, client, sender, message))

        async def evaluate_and_erase() -> list[Any]:
            judged = await replies.run(
                sets, respond, frozenset(settings.kb.smalltalk_intents), checks, prefix, progress
            )
            if not keep:
                store = app.state.store
                for sender in senders:
                    await store.transaction(lambda conn, sender=sender: purge.forget(conn, sender, "rest"))
            return judged

        return client.portal.call(evaluate_and_erase)


def _stream(client: Any, sender: str, message: str) -> dict[str, Any]:
    """One turn through ``/webhooks/rest/stream``: its ``message`` event (the stored reply, with its route)."""
    event, found = "", None
    with client.stream("POST", "/webhooks/rest/stream", json={"sender": sender, "message": message}) as response:
        if response.status_code != 200:
            response.read()
            raise fail(f"the REST channel refused an evaluation message ({response.status_code}): {response.text}")
        for line in response.iter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "message":
                found = json.loads(line.removeprefix("data: "))
    if found is None:
        raise fail(f"the turn for {message!r} ended without its reply")
    return found


@command(eval_app, "kb")
def eval_kb(
    data: Annotated[
        Path | None,
        typer.Option(help="questions: JSONL (ClapNQ form) or a grounded set; default: the bot's grounded sets"),
    ] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="at most this many questions (a stable sample)")] = None,
    retrieval_only: Annotated[bool, typer.Option("--retrieval-only", help="no answers: no LLM needed")] = False,
    calibrate: Annotated[
        bool,
        typer.Option(
            "--calibrate", help="choose the answerability floor and weight (and support settings) on these questions"
        ),
    ] = False,
    modes: Annotated[
        str, typer.Option(help="--calibrate: answer modes to compare (extract, generate, hybrid); default kb.answer")
    ] = "",
    out: Annotated[Path | None, typer.Option(help="report folder; default var/reports/eval-kb")] = None,
) -> None:
    """The knowledge base measured on questions with gold documents: recall@k and MRR, answer F1 and
    similarity, abstention on unanswerable questions, citation validity, retrieval latency. With --calibrate,
    the settings that decline unanswerable questions best on them (answerability depends on the documents
    and how people ask: calibrate on your own questions, then measure on others)."""
    from assistant.store import kb as knowledge
    from evaluation import kb as kb_eval
    from evaluation.llm import llm_backend
    from evaluation.sets import load_sets
    from wiring.cli.kb import embedder as make_embedder

    context = Context()
    settings = context.settings
    if data is not None:
        qa = kb_eval.load_qa(data)
    else:
        grounded = [s for s in load_sets(settings.llm_eval_sets, "eval") if s.kind == "grounded"]
        if not grounded:
            raise fail("the bot has no grounded evaluation set: give one with --data QA.jsonl")
        qa = grounded[0]
    qa = qa.limited(limit)
    chosen_modes = tuple(m.strip() for m in (modes or settings.kb.answer).split(",") if m.strip())
    if calibrate:
        unknown = sorted(set(chosen_modes) - set(kb_eval.ANSWER_MODES))
        if unknown or not chosen_modes:
            raise fail(f"unknown answer mode {', '.join(unknown) or '(none)'}: use extract, generate or hybrid")
        if not any(c.answerable for c in qa.cases) or all(c.answerable for c in qa.cases):
            raise fail(f"{qa.path} needs answerable and unanswerable questions to calibrate abstention on")
    version = transaction(context, knowledge.current_version)
    if version is None or version.chunks == 0:
        raise fail("the knowledge base is empty: add documents with `assistant kb add PATH...` first")
    encoder = make_embedder(settings)
    if calibrate:
        _calibrate(context, qa, encoder, chosen_modes, out)
        return
    llm = None if retrieval_only else llm_backend(settings)
    model = _served_llm(context)

    def answer(writer: Any, retriever: Any, progress: Any) -> Any:
        return kb_eval.evaluate(settings, writer, retriever, model, qa, progress)

    results = _answering(context, encoder, llm, f"KB eval: {qa.name}", len(qa.cases), answer)
    if llm is not None and results and all(r.error for r in results):
        raise fail(f"the LLM at {settings.vllm.url} answered none of the questions: {results[0].error}")
    kb_eval.add_similarity(encoder, results, {c.id: c for c in qa.cases})
    figures = {"retrieval": kb_eval.rounded(kb_eval.retrieval_figures(results))}
    if llm is not None:
        figures["answers"] = kb_eval.rounded(kb_eval.answer_figures(results))
    note = f"{len(qa.cases)} questions from {qa.path}; knowledge base {version.version}; model {model}"
    path = kb_eval.write_report(
        out or settings.reports_dir / "eval-kb", f"Knowledge base: {qa.name}", figures, results, note
    )
    table = Table(title=f"knowledge base {version.version}: {qa.name}")
    table.add_column("figure")
    table.add_column("value")
    for section in figures.values():
        for name, value in section.items():
            table.add_row(name, _num(value) if isinstance(value, float) else str(value))
    console.print(table)
    console.print(f"report: {path}")


def _calibrate(context: Context, qa: Any, encoder: Any, modes: tuple[str, ...], out: Path | None) -> None:
    """`assistant eval kb --calibrate`: every setting of the grid judged on the same answers (the LLM answers
    each question once, and only for the modes that use it)."""
    from evaluation import kb as kb_eval
    from evaluation.llm import llm_backend

    settings = context.settings
    llm = llm_backend(settings) if any(m != "extract" for m in modes) else None
    model = _served_llm(context)

    def answer(writer: Any, retriever: Any, progress: Any) -> Any:
        return kb_eval.raw_answers(writer, retriever, settings.kb, model, qa, progress)

    rows: list[kb_eval.RawAnswer] = _answering(
        context, encoder, llm, f"calibrating on {qa.name}", len(qa.cases), answer
    )
    if llm is not None:
        console.print(f"the LLM ({model}) answered {sum(bool(r.raw) for r in rows)} questions from their passages")
    per_mode = {mode: kb_eval.calibrate(rows, settings.kb, (mode,)) for mode in modes}
    chosen, _ = kb_eval.calibrate(rows, settings.kb, modes)
    table = Table(title=f"calibrated on {qa.name} ({len(qa.cases)} questions): each mode at its best settings")
    names = ("token_f1", "abstention_recall", "over_refusal", "abstention_precision")
    for column in ("answer", "floor", "sentence weight", *names):
        table.add_column(column)
    for mode, (best, mode_figures) in per_mode.items():
        mark = " (chosen)" if best == chosen else ""
        table.add_row(f"{mode}{mark}", f"{best.min_score:.2f}", f"{best.sentence_weight:.1f}",
                      *(_num(mode_figures.get(n)) for n in names))  # fmt: skip
    console.print(table)
    picked = {"answer": chosen.answer, "sentence_weight": chosen.sentence_weight, "min_score": chosen.min_score}
    if chosen.answer != "extract":
        picked |= {"min_support": chosen.min_support, "min_answer_words": chosen.min_answer_words}
    results = kb_eval.judge_raw(rows, chosen)
    kb_eval.add_similarity(encoder, results, {c.id: c for c in qa.cases})
    note = f"calibrated on {len(qa.cases)} questions from {qa.path}: {picked}"
    path = kb_eval.write_report(
        out or settings.reports_dir / "eval-kb-calibration", f"Calibration: {qa.name}",
        {"chosen": picked, "answers": kb_eval.rounded(kb_eval.answer_figures(results))}, results, note,
    )  # fmt: skip
    console.print("put this in assistant.yml (figures on the same questions flatter: measure on others):")
    console.print("kb:\n" + "".join(f"  {k}: {v}\n" for k, v in picked.items()), markup=False, end="")
    console.print(f"report: {path}")


def _served_llm(context: Context) -> str:
    """The LLM version live traffic gets: the registry's active one, else the base model."""
    active = transaction(context, lambda conn: registry.active(conn, ModelKind.LLM))
    return active.version if active else context.settings.default_llm_model


def _answering(context: Context, encoder: Any, llm: Any, title: str, total: int, answer: Any) -> Any:
    """Run ``answer(writer, retriever, progress)`` (a coroutine) over the knowledge base with a progress bar;
    ``llm`` None: no writer (retrieval or quoting only). The LLM client is closed after."""
    from assistant.domain import Domain
    from assistant.knowledge.retrieval import HybridRetriever
    from assistant.replies.writer import ReplyWriter

    settings = context.settings

    async def run(store: Any) -> Any:
        retriever = HybridRetriever(settings.kb, store, encoder)
        writer = None if llm is None else ReplyWriter(settings, llm, Domain.load(settings.bot_dir))
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        try:
            with Progress(*columns, console=console) as bar:
                task = bar.add_task(title, total=total)
                return await answer(writer, retriever, lambda done, *_: bar.update(task, completed=done))
        finally:
            if llm is not None:
                await llm.aclose()

    return context.run(run)


async def _no_reroute(endpoint: str | None) -> None:
    return None


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


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
