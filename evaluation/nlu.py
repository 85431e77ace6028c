"""`assistant eval nlu`: the classifier's and the router's quality on a Rasa-format test set, with an
optional threshold sweep on a validation set, written as Markdown + PNGs + JSON."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from assistant.config import Settings
from assistant.contracts import AssistantError, NLUBackend
from evaluation import nlu_report as report
from evaluation.nlu_metrics import Prediction, SweepPoint, evaluate, sweep
from evaluation.nlu_predict import predict, test_examples


def confidence_png(predictions: list[Prediction], llm_intents: set[str], path: Path) -> Path:
    """Top confidence of right, wrong and out-of-scope examples: where a threshold would cut."""
    groups = {
        "in scope, right": [p.confidence for p in predictions if p.gold not in llm_intents and p.label == p.gold],
        "in scope, wrong": [p.confidence for p in predictions if p.gold not in llm_intents and p.label != p.gold],
        "out of scope": [p.confidence for p in predictions if p.gold in llm_intents],
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    for label, values in groups.items():
        if values:
            ax.hist(values, bins=20, range=(0, 1), alpha=0.6, label=f"{label} ({len(values)})")
    ax.set_xlabel("top intent confidence")
    ax.set_ylabel("examples")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sweep_png(grid: list[SweepPoint], best: SweepPoint, path: Path) -> Path:
    fig, ax = plt.subplots(figsize=(7, 4))
    line = [p for p in grid if p.margin == best.margin]
    ax.plot([p.threshold for p in line], [p.in_scope_accuracy for p in line], "o-", label="in-scope accuracy")
    ax.plot([p.threshold for p in line], [p.oos_recall for p in line], "s-", label="out-of-scope recall")
    ax.axvline(best.threshold, color="gray", linestyle="--", label=f"chosen {best.threshold:.2f}")
    ax.set_xlabel(f"confidence threshold (margin {best.margin:.2f})")
    ax.set_ylim(0, 1.02)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_router_config(path: Path, threshold: float, margin: float) -> None:
    """Store tuned values under ``router:`` in the settings file; its other keys and comments stay."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap

    yaml = YAML()
    data = yaml.load(path.read_text()) if path.exists() else None
    if data is None:
        data = CommentedMap()
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a mapping of settings")
    if not isinstance(data.get("router"), dict):
        data["router"] = CommentedMap()
    data["router"]["confidence_threshold"] = threshold
    data["router"]["ambiguity_margin"] = margin
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("w") as handle:
        yaml.dump(data, handle)
    os.replace(temporary, path)


class EvaluationError(AssistantError):
    pass


@dataclass(frozen=True)
class Tuning:
    """The threshold sweep on the validation set: the point chosen, and every point tried."""

    max_drop: float
    best: SweepPoint
    grid: list[SweepPoint]


@dataclass(frozen=True)
class Evaluation:
    """What `assistant eval nlu` measured (also written to ``metrics.json``)."""

    data: str
    router: dict[str, Any]
    metrics: dict[str, Any]  # evaluation.nlu_metrics.evaluate: headline figures and the per-intent report
    tuning: Tuning | None


async def run_eval(
    settings: Settings, backend: NLUBackend, data: Path, out: Path, tune_on: Path | None, max_drop: float = 0.01
) -> Evaluation:
    """Classify ``data`` with ``backend``; with ``tune_on``, pick the threshold and margin there
    first (costing at most ``max_drop`` of in-scope accuracy) and report ``data`` with them. Returns the
    summary written to ``out/metrics.json``."""
    out.mkdir(parents=True, exist_ok=True)
    router = settings.router
    llm_intents = set(router.llm_intents)
    tuned: Tuning | None = None
    if tune_on is not None:
        validation = await predict(backend, _examples(tune_on))
        best, grid = sweep(validation, router, max_drop=max_drop)
        sweep_png(grid, best, out / "threshold_sweep.png")
        router = router.model_copy(update={"confidence_threshold": best.threshold, "ambiguity_margin": best.margin})
        tuned = Tuning(max_drop, best, grid)
    predictions = await predict(backend, _examples(data))
    metrics = evaluate(predictions, router)
    report.confusion_png(predictions, out / "confusion.png", f"NLU on {data.name}")
    confidence_png(predictions, llm_intents, out / "confidence.png")
    summary = Evaluation(str(data), router.model_dump(), metrics, tuned)
    (out / "metrics.json").write_text(json.dumps(asdict(summary), indent=2))
    (out / "intent_report.json").write_text(json.dumps(metrics["per_intent"], indent=2))
    (out / "predictions.json").write_text(json.dumps([{**asdict(p), "label": p.label} for p in predictions], indent=2))
    rows = [(name, metrics[name], None) for name in ("in_scope_accuracy", "macro_f1", "oos_recall", "oos_precision")]
    sections = [
        f"# NLU evaluation: {data.name}",
        f"{metrics['examples']} examples ({metrics['in_scope_examples']} in scope, {metrics['oos_examples']} "
        f"routed to the LLM by label: {', '.join(sorted(llm_intents))}). Router: threshold "
        f"{router.confidence_threshold}, margin {router.ambiguity_margin}.",
        report.table(rows, ("metric", "value", "")),
        "![confusion](confusion.png)\n\n![confidence](confidence.png)",
    ]
    if tuned:
        best = asdict(tuned.best)
        sections.append(
            f"## Threshold sweep on {tune_on}\n\nChosen: threshold {best['threshold']}, margin {best['margin']} "
            f"(in-scope accuracy {best['in_scope_accuracy']:.3f}, out-of-scope recall {best['oos_recall']:.3f} "
            "there).\n\n![sweep](threshold_sweep.png)"
        )
    report.write(out / "report.md", sections)
    return summary


def _examples(path: Path) -> list[Any]:
    try:
        return test_examples(path)
    except ValueError as exc:
        raise EvaluationError(f"could not read the test set {path}: {exc}") from exc
