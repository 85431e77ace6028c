"""`assistant retrain`: export -> train both models -> evaluate against what is served -> promote only what
is better -> publish without downtime -> report.

Safety: one retrain at a time (a lock in the database); a candidate is registered as ``training`` before
any work and ends ``candidate``/``active``/``rejected``, or ``failed`` (also when the process was killed:
the next retrain marks it). Nothing served changes until a candidate has won its evaluation.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from assistant.config import Settings
from assistant.contracts import AssistantError, ModelKind
from assistant.store import Store, feedback, locks, registry
from assistant.store.tables import TrainingRun, utcnow
from assistant.turn.router import Router
from evaluation import nlu_report as report
from evaluation.nlu_metrics import HEADLINE, ROUTES, Prediction, evaluate, not_worse
from evaluation.nlu_predict import predict, test_examples
from evaluation.replies import nlu_routes
from evaluation.sets import BadEvalSet, EvalSet, load_sets
from training.export import NLUExport, SFTExport, export_nlu, export_sft
from training.llm_gate import run_gate, stored_gate_section
from training.lora import train_adapter
from training.publish import model_server, nlu_trainer, publish, version_of
from training.stages import StageTimes

LOCK = "retrain"
HEARTBEAT_S = 10.0
runs = TrainingRun.__table__


class RetrainError(AssistantError):
    """Ends the retrain with a sentence for the user and a non-zero exit code; nothing served changed."""


class OutcomeStatus(enum.StrEnum):
    PROMOTED = "promoted"
    REJECTED = "rejected"
    SKIPPED = "skipped"
    PLANNED = "planned"


class RunStatus(enum.StrEnum):
    RUNNING = "running"
    FINISHED = "finished"
    FAILED = "failed"
    SKIPPED = "skipped"
    DRY_RUN = "dry-run"


@dataclass
class RetrainOptions:
    nlu: bool = True
    llm: bool = True
    dry_run: bool = False
    min_new: int = 0
    nlu_epochs: int | None = None
    llm_epochs: int | None = None
    auto_label_confidence: float | None = None
    scrub: bool = True


@dataclass
class Outcome:
    """What happened to one model kind in this run."""

    kind: ModelKind
    status: OutcomeStatus
    version: str | None = None
    reason: str = ""
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class RetrainResult:
    run_id: int
    status: RunStatus
    outcomes: list[Outcome]
    report: Path | None
    stages: dict[str, dict[str, float]]


class Retrain:
    def __init__(self, settings: Settings, options: RetrainOptions, console: Console | None = None) -> None:
        self.settings = settings
        self.options = options
        self.console = console or Console()
        self.store = Store(settings.db_url, settings.db)
        self.times = StageTimes()
        self.nlu_server = nlu_trainer(settings)
        self.llm_server = model_server(settings, ModelKind.LLM)
        self.candidates: list[str] = []  # versions registered by this run (failed if it dies)
        self.sections: list[str] = []
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"),
            TimeElapsedColumn(), console=self.console,
        )  # fmt: skip

    # ---------------------------------------------------------------- the run

    async def run(self) -> RetrainResult:
        try:
            async with self._locked():
                return await self._run()
        finally:
            await asyncio.gather(self.nlu_server.aclose(), self.llm_server.aclose())
            await self.store.aclose()

    async def _run(self) -> RetrainResult:
        if self.options.llm and not self.options.nlu and not self.llm_server.serves_versions:
            raise RetrainError(_cannot_serve_adapters(self.settings))
        stuck = await self.store.transaction(registry.fail_unfinished)
        if stuck:
            self.console.print(f"[yellow]marked failed (left unfinished by a retrain that died): {', '.join(stuck)}[/]")
        since = await self.store.transaction(_last_run_start)
        new_items = await self.store.transaction(lambda conn: feedback.count_new(conn, since))
        run_id = await self.store.transaction(self._start_run)
        if new_items < self.options.min_new:
            message = (
                f"{new_items} new labels/feedback items since the last retrain; --min-new is {self.options.min_new}"
            )
            self.console.print(f"nothing to do: {message}")
            await self.store.transaction(
                lambda conn: _end_run(conn, run_id, RunStatus.SKIPPED, {"reason": message}, None)
            )
            return RetrainResult(run_id, RunStatus.SKIPPED, [], None, {})
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        work = self.settings.data_dir / "retrain" / f"run-{run_id:04d}"
        report_dir = self.settings.reports_dir / f"retrain-{run_id:04d}-{stamp}"
        report_dir.mkdir(parents=True, exist_ok=True)
        try:
            outcomes = await self._stages(work, report_dir)
        except BaseException as exc:
            await self._fail(run_id, exc)
            raise
        summary = {"outcomes": [o.__dict__ for o in outcomes], "stages": self.times.stages}
        report_path = self._write_report(report_dir, run_id, outcomes)
        status = RunStatus.DRY_RUN if self.options.dry_run else RunStatus.FINISHED
        await self.store.transaction(lambda conn: _end_run(conn, run_id, status, summary, str(report_path)))
        return RetrainResult(run_id, status, outcomes, report_path, self.times.stages)

    async def _stages(self, work: Path, report_dir: Path) -> list[Outcome]:
        options = self.options
        with self.times.stage("export"):
            nlu_data = await export_nlu(
                self.settings,
                self.store,
                work / "nlu",
                options.auto_label_confidence or self.settings.training.auto_label_confidence,
            )
            sft_data = await export_sft(self.settings, self.store, work / "sft", scrub=options.scrub)
        self.sections.append(_data_section(nlu_data, sft_data))
        nlu_ready, nlu_why = _enough_nlu(nlu_data)
        llm_ready, llm_why = self._enough_sft(sft_data)
        if not self.llm_server.serves_versions:
            llm_ready, llm_why = False, _cannot_serve_adapters(self.settings)
        wanted = [kind for kind, on in ((ModelKind.NLU, options.nlu), (ModelKind.LLM, options.llm)) if on]
        ready = {ModelKind.NLU: (nlu_ready, nlu_why), ModelKind.LLM: (llm_ready, llm_why)}
        if not any(ready[kind][0] for kind in wanted):
            raise RetrainError("too little data: " + "; ".join(ready[kind][1] for kind in wanted))

        outcomes = []
        with self.progress:
            for kind in wanted:
                ok, why = ready[kind]
                if not ok:
                    outcomes.append(Outcome(kind, OutcomeStatus.SKIPPED, reason=why))
                elif options.dry_run:
                    plan = await self._plan(kind, nlu_data, sft_data)
                    outcomes.append(Outcome(kind, OutcomeStatus.PLANNED, reason=plan))
                elif kind == ModelKind.NLU:
                    outcomes.append(await self._nlu(nlu_data, report_dir))
                else:
                    outcomes.append(await self._llm(sft_data, work, report_dir))
        return outcomes

    # ---------------------------------------------------------------- NLU

    async def _nlu(self, data: NLUExport, report_dir: Path) -> Outcome:
        settings, trainer = self.settings, self.nlu_server
        active = await self.store.transaction(lambda conn: registry.active(conn, ModelKind.NLU))
        candidate = await self._register(
            ModelKind.NLU, parent=active.version if active else None, data_hash=data.data_hash
        )
        task = self._task(f"NLU {candidate.version}: training")
        with self.times.stage("nlu_train"):
            trained = await asyncio.to_thread(
                trainer.train,
                data.train,
                candidate.version,
                version_of(active),
                active.config_hash if active else None,
                self.options.nlu_epochs or settings.training.nlu_epochs,
                self._reporter(task),
            )
        self._finish(task)
        await self.store.transaction(
            lambda conn: registry.update_version(
                conn, candidate.version, path=str(trained.path), config_hash=trained.config_hash
            )
        )
        examples, reply_sets = test_examples(data.test), _reply_sets(settings)
        router, talk = Router(settings.router), frozenset(settings.kb.smalltalk_intents)
        task = self._task(f"NLU {candidate.version}: evaluating on {len(examples)} held-out examples", total=None)
        with self.times.stage("nlu_evaluate"):
            async with trainer.evaluating(trained.path) as backend:
                new = await predict(backend, examples)
                new_routes = await nlu_routes(backend, reply_sets, router, talk)
            old: list[Prediction] | None = None
            if active is not None:
                async with trainer.evaluating(None) as backend:  # the served model
                    old = await predict(backend, examples)
                    old_routes = await nlu_routes(backend, reply_sets, router, talk)
        self._finish(task)
        new_metrics = {**evaluate(new, settings.router), **new_routes}
        old_metrics = {**evaluate(old, settings.router), **old_routes} if old is not None else {}
        promote, drops = not_worse(new_metrics, old_metrics, settings.training.nlu_tolerance, HEADLINE + ROUTES)
        shown = (*HEADLINE, *(r for r in ROUTES if new_metrics[r] is not None), "accuracy", "oos_precision")
        headline = {name: new_metrics[name] for name in shown}
        metrics = {
            "candidate": headline,
            "active": {name: old_metrics.get(name) for name in headline},
            "mode": trained.mode,
            "examples": len(examples),
        }
        report.confusion_png(new, report_dir / "nlu_confusion.png", f"{candidate.version} on held-out examples")
        rows = [(name, old_metrics.get(name), new_metrics[name]) for name in headline]
        report.metrics_png(rows, report_dir / "nlu_metrics.png", "NLU: active vs candidate")
        (report_dir / "nlu_intent_report.json").write_text(json.dumps(new_metrics["per_intent"], indent=2))
        reason = (
            f"not worse than {active.version if active else 'nothing'} on {len(examples)} held-out examples"
            if promote
            else "worse than the active model: " + ", ".join(drops)
        )
        if trained.note:
            reason += f"; {trained.note}"
        outcome = await self._conclude(
            candidate, promote, metrics, reason, "hot-swapping into the NLU server",
            lambda current: publish(settings, self.store, trainer, ModelKind.NLU, current),
        )  # fmt: skip
        await trainer.aclose()  # the candidate's stand-in server, kept until now for the swap
        self.sections.append(_nlu_section(outcome, rows, active.version if active else None))
        return outcome

    # ---------------------------------------------------------------- LLM

    async def _llm(self, data: SFTExport, work: Path, report_dir: Path) -> Outcome:
        settings = self.settings
        active = await self.store.transaction(lambda conn: registry.active(conn, ModelKind.LLM))
        candidate = await self._register(
            ModelKind.LLM, parent=active.version if active else None, data_hash=data.data_hash
        )
        out = settings.adapters_dir / candidate.version
        await self.store.transaction(lambda conn: registry.update_version(conn, candidate.version, path=str(out)))
        task = self._task(f"LLM {candidate.version}: LoRA fine-tuning")
        with self.times.stage("llm_train"):
            result = await asyncio.to_thread(
                train_adapter,
                settings,
                data.train,
                data.validation,
                out,
                active.path if active else None,
                self.options.llm_epochs or settings.training.llm_epochs,
                self._reporter(task),
            )
        self._finish(task)
        metrics = result.metrics
        report.loss_png(result.curve, report_dir / "llm_loss.png")
        (work / "llm_curve.json").write_text(json.dumps(result.curve))
        reference = "active" if active else "base"
        name = active.version if active else "the base model"
        loss = f"held-out loss {metrics['candidate_loss']:.4f} vs {metrics[f'{reference}_loss']:.4f} for {name}"

        # The gate: the evaluation sets kept with the bot, answered by the candidate and by the served model.
        served = active.version if active else settings.default_llm_model
        record = await self.store.transaction(lambda conn: registry.get(conn, candidate.version))
        with self.times.stage("llm_evaluate"):
            checked = await run_gate(settings, self.llm_server, record, served, self.progress, report_dir / "llm_eval")
        gate = checked.result
        metrics.update(checked.metrics)
        promote = gate.passed
        reason = f"{gate.reason()}; {loss} (reported, not decisive)"
        outcome = await self._conclude(
            candidate, promote, metrics, reason, "loading into vLLM and switching",
            lambda current: publish(settings, self.store, self.llm_server, ModelKind.LLM, current),
        )  # fmt: skip
        self.sections.append(_llm_section(outcome, active.version if active else None))
        return outcome

    # ---------------------------------------------------------------- helpers

    async def _plan(self, kind: ModelKind, nlu_data: NLUExport, sft_data: SFTExport) -> str:
        active = await self.store.transaction(lambda conn: registry.active(conn, kind))
        if kind == ModelKind.NLU:
            return (
                f"would train on {nlu_data.counts['train_examples']} examples "
                f"({nlu_data.counts['human_labels']} labels) and compare with "
                f"{active.version if active else 'nothing'} on {nlu_data.counts['test_examples']} held-out examples"
            )
        return (
            f"would fine-tune a LoRA adapter on {sft_data.counts['train']} replies and compare with "
            f"{active.version if active else 'the base model'} on {sft_data.counts['validation']} held-out replies"
        )

    def _enough_sft(self, data: SFTExport) -> tuple[bool, str]:
        needed = self.settings.training.llm_min_examples
        if data.counts["train"] < needed or data.counts["validation"] < 1:
            waiting = data.counts["anonymous feedback pending review"]
            unreviewed = (
                f"; {waiting} anonymous feedback items are not training data until a reviewer approves them "
                "(`assistant review --llm` or POST /api/messages/ID/review)"
                if waiting
                else ""
            )
            return False, (
                f"the LLM needs at least {needed} trusted rated-up or corrected LLM replies to train on and 1 to "
                f"validate on (from 2+ conversations); there are {data.counts['train']} and "
                f"{data.counts['validation']}{unreviewed}"
            )
        return True, ""

    async def _conclude(
        self,
        candidate: registry.ModelRecord,
        promote: bool,
        metrics: dict[str, Any],
        reason: str,
        doing: str,
        publish: Callable[[registry.ModelRecord], Awaitable[None]],
    ) -> Outcome:
        """Reject the candidate, or promote it: candidate status, then publish (which makes it active)."""
        if not promote:
            await self._set_status(candidate.version, registry.REJECTED, metrics, error=reason)
            return Outcome(candidate.kind, OutcomeStatus.REJECTED, candidate.version, reason, metrics)
        await self._set_status(candidate.version, registry.CANDIDATE, metrics)
        task = self._task(f"{candidate.kind.upper()} {candidate.version}: {doing}", total=None)
        with self.times.stage(f"{candidate.kind}_publish"):
            await publish(await self.store.transaction(lambda conn: registry.get(conn, candidate.version)))
        self._finish(task)
        return Outcome(candidate.kind, OutcomeStatus.PROMOTED, candidate.version, reason, metrics)

    async def _set_status(self, version: str, status: str, metrics: dict[str, Any], error: str | None = None) -> None:
        await self.store.transaction(
            lambda conn: registry.update_version(conn, version, status=status, metrics=metrics, error=error)
        )

    async def _register(self, kind: ModelKind, **fields: Any) -> registry.ModelRecord:
        record = await self.store.transaction(lambda conn: registry.register(conn, kind, **fields))
        self.candidates.append(record.version)
        return record

    async def _fail(self, run_id: int, exc: BaseException) -> None:
        error = str(exc) or repr(exc)
        with contextlib.suppress(Exception):
            await asyncio.shield(self.store.transaction(lambda conn: self._mark_failed(conn, run_id, error)))

    def _mark_failed(self, conn: Connection, run_id: int, error: str) -> None:
        for version in self.candidates:
            if registry.get(conn, version).status in (registry.TRAINING, registry.CANDIDATE):
                registry.update_version(conn, version, status=registry.FAILED, error=error[:2000])
        _end_run(conn, run_id, RunStatus.FAILED, {"error": error[:2000]}, None)

    def _start_run(self, conn: Connection) -> int:
        options = {k: v for k, v in self.options.__dict__.items()}
        result = conn.execute(insert(runs).values(options=options, status=RunStatus.RUNNING, started_at=utcnow()))
        return int(result.inserted_primary_key[0])

    def _task(self, description: str, total: float | None = 100) -> TaskID:
        return self.progress.add_task(description, total=total, note="")

    def _finish(self, task: TaskID) -> None:
        self.progress.update(task, total=1, completed=1)

    def _reporter(self, task: TaskID) -> Callable[[int, int, str], None]:
        def update(done: int, total: int, note: str) -> None:
            self.progress.update(task, completed=done, total=total, note=note[-40:])

        return update

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        holder = locks.new_holder()
        stale = self.settings.training.lock_stale_after_s
        try:
            held_by = await self.store.transaction(lambda conn: locks.try_acquire(conn, LOCK, holder, stale))
        except IntegrityError:
            held_by = "another retrain that started at the same moment"
        if held_by:
            raise RetrainError(f"another retrain is running ({held_by}); try again when it has finished")

        async def beat() -> None:
            while True:
                await asyncio.sleep(HEARTBEAT_S)
                await self.store.transaction(lambda conn: locks.heartbeat(conn, LOCK, holder))

        heart = asyncio.create_task(beat())
        try:
            yield
        finally:
            heart.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await heart
            await asyncio.shield(self.store.transaction(lambda conn: locks.release(conn, LOCK, holder)))

    def _write_report(self, folder: Path, run_id: int, outcomes: list[Outcome]) -> Path:
        lines = [f"# Retrain run {run_id} ({datetime.now():%Y-%m-%d %H:%M})", ""]
        lines += [f"- **{o.kind.upper()}**: {o.status} {o.version or ''} - {o.reason}" for o in outcomes]
        stage_rows = "\n".join(
            f"| {name} | {v['seconds']:.1f} | {v['peak_mib']:.0f} |" for name, v in self.times.stages.items()
        )
        stages = f"## Stages\n\n| stage | seconds | peak memory MiB |\n|---|---|---|\n{stage_rows}"
        (folder / "summary.json").write_text(
            json.dumps({"outcomes": [o.__dict__ for o in outcomes], "stages": self.times.stages}, indent=2)
        )
        return report.write(folder / "report.md", ["\n".join(lines), *self.sections, stages])


# ---------------------------------------------------------------- small pieces


def _reply_sets(settings: Settings) -> list[EvalSet]:
    """The evaluation part's small talk and out-of-scope requests (``evaluation.replies.nlu_routes``); none
    when the bot has no such sets."""
    try:
        sets = load_sets(settings.llm_eval_sets, "eval")
    except BadEvalSet:
        return []
    return [s for s in sets if s.kind in ("reference", "declined")]


def _cannot_serve_adapters(settings: Settings) -> str:
    return (
        f"the LLM backend (llm.server: {settings.llm.server}, at {settings.vllm.url}) serves one fixed model and "
        "cannot serve LoRA adapters, so no adapter is trained for it; the served models are unchanged"
    )


def _enough_nlu(data: NLUExport) -> tuple[bool, str]:
    if data.counts["human_labels"] + data.counts["auto_labels"] == 0:
        return False, (
            "the NLU model has no new training data: label user messages (POST /api/messages/ID/label or "
            "`assistant review`) or allow auto-labels (--auto-label-confidence)"
        )
    return True, ""


def _last_run_start(conn: Connection) -> datetime | None:
    query = select(runs.c.started_at).where(runs.c.status == RunStatus.FINISHED).order_by(runs.c.id.desc()).limit(1)
    return conn.scalar(query)


def _end_run(
    conn: Connection, run_id: int, status: RunStatus, summary: dict[str, Any], report_path: str | None
) -> None:
    conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(status=status, summary=json.loads(json.dumps(summary, default=str)), report=report_path,
                finished_at=utcnow())
    )  # fmt: skip


def _data_section(nlu: NLUExport, sft: SFTExport) -> str:
    rows = "\n".join(f"| NLU {k.replace('_', ' ')} | {v} |" for k, v in nlu.counts.items())
    rows += "\n" + "\n".join(f"| LLM {k.replace('_', ' ')} | {v} |" for k, v in sft.counts.items())
    text = f"## Data\n\n| | count |\n|---|---|\n{rows}"
    if nlu.conflicts:
        listed = "\n".join(
            f'- "{c["text"]}": {", ".join(c["sources"])} -> kept {c["kept"]}' for c in nlu.conflicts[:20]
        )
        text += f"\n\n### Conflicting labels ({len(nlu.conflicts)})\n\n{listed}"
    return text


def _nlu_section(outcome: Outcome, rows: list[tuple[str, Any, Any]], active: str | None) -> str:
    return (
        f"## NLU: {outcome.version} ({outcome.metrics['mode']} training) vs {active or 'nothing'}\n\n"
        f"{outcome.status}: {outcome.reason}\n\n"
        f"{report.table(rows)}\n\n"
        "![NLU metrics](nlu_metrics.png)\n\n![confusion matrix](nlu_confusion.png)"
    )


def _llm_section(outcome: Outcome, active: str | None) -> str:
    m = outcome.metrics
    rows = [
        ("held-out loss", m.get("active_loss", m["base_loss"]), m["candidate_loss"]),
        ("held-out perplexity", m.get("active_perplexity", m["base_perplexity"]), m["candidate_perplexity"]),
        ("base model loss", m["base_loss"], m["base_loss"]),
    ]
    return (
        f"## LLM: {outcome.version} vs {active or 'the base model'}\n\n{outcome.status}: {outcome.reason}\n\n"
        f"{report.table(rows)}\n\n"
        f"{m['train_examples']} training and {m['validation_examples']} held-out replies; "
        f"{m['train_seconds']:.0f} s on {m['device']}, {m['train_tokens_per_s']:.0f} tokens/s.\n\n"
        "![loss curves](llm_loss.png)\n\n"
        + (stored_gate_section(m["gate"]) if "gate" in m else "")
        + "\n\nThe evaluation sets, reply by reply: [llm_eval/report.md](llm_eval/report.md)"
    )
