"""The LLM's promotion gate: an adapter is promoted only if every reply of the behaviour sets passes every
check, and on every set it is not worse than the model served now beyond the tolerances in
``training.llm_gate``. Held-out loss is reported next to it but never decides alone: it rewards copying
whatever the adapter was trained on. Loops are judged by the looping share (over 20 % of a reply's trigrams
repeated) of what is sent and of the model's own text; how often the loop guard cut a reply (any repeated
4-gram, a hair trigger) is reported, not gated. Distinct-2 is reported, not gated: short replies in the bot's persona
("Cool.", "Hey!") lower it without being worse, and loops are caught by the looping figures. On grounded sets
(questions for the knowledge base) abstention recall and over-refusal are gated, token F1 and similarity are
reported: an abstention scores 0 there, so on a sample of a few questions they move by whole cases."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.progress import Progress

from assistant.config import LLMGateSettings, Settings
from assistant.contracts import ModelServer
from assistant.store import registry
from evaluation.llm import LLMEvaluation, evaluate_models, llm_backend, write_report
from evaluation.sets import load_sets
from training.publish import version_of


@dataclass(frozen=True)
class GateCheck:
    name: str  # "<set>: <figure>"
    candidate: float | None
    active: float | None
    limit: float | None  # the value the candidate had to reach (at least / at most, see ``higher``)
    higher: bool
    passed: bool


@dataclass
class GateResult:
    passed: bool
    checks: list[GateCheck] = field(default_factory=list)

    @property
    def failed(self) -> list[GateCheck]:
        return [c for c in self.checks if not c.passed]

    def reason(self) -> str:
        """One sentence: which checks decided."""
        if self.passed:
            return f"passed all {len(self.checks)} gate checks"
        parts = [
            f"{c.name} {_fmt(c.candidate)} (needs {'>=' if c.higher else '<='} {_fmt(c.limit)}; "
            f"served model {_fmt(c.active)})"
            for c in self.failed
        ]
        return "failed the gate: " + "; ".join(parts)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# the figures are kept to 4 decimals: a limit met exactly (2/6 served + one case of 1/6 = 3/6) must not fail on
# 0.3333 + 0.1667 falling short of 0.5
ROUNDING = 1e-4


def decide(candidate: LLMEvaluation, active: LLMEvaluation, tolerance: LLMGateSettings) -> GateResult:
    checks: list[GateCheck] = []

    def compare(name: str, new: float | None, old: float | None, limit: float | None, higher: bool) -> None:
        if new is None or limit is None:
            return
        passed = new >= limit - ROUNDING if higher else new <= limit + ROUNDING
        checks.append(GateCheck(name, new, old, round(limit, 4), higher, passed))

    # figure -> (how much worse it may get, whether higher is better, whether it is a share of the cases:
    # then one case's worth is allowed too, as small samples move by whole cases)
    relative = {
        "similarity": (tolerance.similarity, True, False),
        "token_f1": (tolerance.token_f1, True, False),
        "looping": (tolerance.looping, False, True),
        "model_looping": (tolerance.looping, False, True),
        "withheld": (tolerance.withheld, False, True),
        "abstention_recall": (tolerance.abstention, True, True),  # grounded sets: unanswerable questions declined
        "over_refusal": (tolerance.abstention, False, True),  # grounded sets: answerable questions declined
        "errors": (0.0, False, False),  # cases the model did not answer (after a retry)
    }
    for figures in candidate.sets:
        other = active.figures(figures.name)
        if other is None:
            continue
        m, o = figures.metrics, other.metrics
        one_case = 1 / max(figures.cases, 1)
        for check, rate in figures.checks.items():
            old = other.checks.get(check)
            if figures.kind == "behaviour":  # every reply must pass, whatever the served model does
                compare(f"{figures.name}: {check}", rate, old, 1.0, True)
            else:
                slack = max(tolerance.checks, one_case)
                compare(f"{figures.name}: {check}", rate, old, None if old is None else old - slack, True)
        for name, (slack, higher, share) in relative.items():
            if name == "model_looping" and figures.kind == "behaviour":
                continue  # its cases ask for repetition; what users get there is held to every check instead
            if name in ("similarity", "token_f1") and figures.kind == "grounded":
                continue  # reported: an abstention scores 0, so on a few questions they move by whole cases
            old = o.get(name)
            slack = max(slack, one_case) if share else slack
            limit = None if old is None else (old - slack if higher else old + slack)
            compare(f"{figures.name}: {name}", m.get(name), old, limit, higher)
        old_length = o.get("words_median")
        if old_length is not None:
            allowed = max(old_length * tolerance.length_ratio, 2 * (m.get("reference_words_median") or 0))
            compare(f"{figures.name}: words_median", m.get("words_median"), old_length, allowed, False)
    return GateResult(all(c.passed for c in checks), checks)


@dataclass
class GateRun:
    """The gate applied to a candidate adapter: the verdict, and what to store with the version."""

    result: GateResult
    metrics: dict[str, Any]  # "gate", "eval", "eval_report": merged into the version's metrics
    report: Path


async def _no_reroute(endpoint: str | None) -> None:
    return None


async def run_gate(
    settings: Settings, server: ModelServer, candidate: registry.ModelRecord, served: str, bar: Progress, out: Path
) -> GateRun:
    """Load ``candidate`` into the LLM server (loaded to be asked, not served), answer the evaluation sets
    with it and with ``served`` (the active adapter or the base model), and decide."""
    sets = [s.limited(settings.training.llm_eval_limit) for s in load_sets(settings.llm_eval_sets, "eval")]
    await server.serve(version_of(candidate), _no_reroute)
    llm = llm_backend(settings)
    try:
        new, old = await evaluate_models(settings, llm, [candidate.version, served], sets, bar)
    finally:
        await llm.aclose()
    result = decide(new, old, settings.training.llm_gate)
    title = f"LLM gate: {candidate.version} vs {served}"
    report = write_report(out, new, old, title, [gate_section(result)])
    metrics = {
        "gate": {
            "passed": result.passed,
            "reason": result.reason(),
            "failed": [c.name for c in result.failed],
            "checks": [asdict(c) for c in result.checks],
        },
        "eval": {"candidate": {f.name: f.metrics for f in new.sets}, served: {f.name: f.metrics for f in old.sets}},
        "eval_report": str(report),
    }
    return GateRun(result, metrics, report)


def gate_section(gate: GateResult) -> str:
    rows = "\n".join(
        f"| {c.name} | {_fmt(c.active)} | {_fmt(c.candidate)} | {'>=' if c.higher else '<='} {_fmt(c.limit)} | "
        f"{'pass' if c.passed else '**FAIL**'} |"
        for c in gate.checks
    )
    return (
        f"## Gate: {'passed' if gate.passed else 'failed'}\n\n{gate.reason()}\n\n"
        f"| check | served | candidate | needs | |\n|---|---|---|---|---|\n{rows}"
    )


def stored_gate_section(gate: dict[str, Any]) -> str:
    """The gate section from what is stored in a version's metrics."""
    return gate_section(GateResult(gate["passed"], [GateCheck(**c) for c in gate["checks"]]))
