"""The retrain report: Markdown plus PNG plots (confusion matrix, loss curves, before/after metrics)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from sklearn.metrics import confusion_matrix

from evaluation.nlu_metrics import Prediction

MAX_CONFUSION_LABELS = 20


def confusion_png(predictions: list[Prediction], path: Path, title: str) -> Path:
    """Confusion matrix over the intents involved in mistakes (all intents when there are few)."""
    gold = [p.gold for p in predictions]
    predicted = [p.label or "(none)" for p in predictions]
    mistakes = [(g, p) for g, p in zip(gold, predicted, strict=True) if g != p]
    involved = sorted({name for pair in mistakes for name in pair})
    labels = sorted(set(gold) | set(predicted))
    if len(labels) > MAX_CONFUSION_LABELS and involved:
        labels = involved[:MAX_CONFUSION_LABELS]
    matrix = confusion_matrix(gold, predicted, labels=labels)
    size = max(5.0, 0.4 * len(labels) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("labelled")
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            if value:
                ax.text(j, i, str(value), ha="center", va="center", fontsize=7)
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def loss_png(curve: list[dict[str, Any]], path: Path) -> Path:
    train = [(c["step"], c["train_loss"]) for c in curve if "train_loss" in c]
    validation = [(c["step"], c["validation_loss"]) for c in curve if "validation_loss" in c]
    fig, ax = plt.subplots(figsize=(7, 4))
    if train:
        ax.plot(*zip(*train, strict=True), label="training loss (per step)", alpha=0.7)
    if validation:
        ax.plot(*zip(*validation, strict=True), "o-", label="held-out loss (per epoch)")
    ax.set_xlabel("step")
    ax.set_ylabel("loss per reply token")
    ax.legend()
    ax.set_title("LoRA fine-tuning")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def metrics_png(rows: list[tuple[str, float | None, float | None]], path: Path, title: str) -> Path:
    """Bars of before (active) vs after (candidate) for each metric."""
    names = [name for name, _, _ in rows]
    before = [value or 0.0 for _, value, _ in rows]
    after = [value or 0.0 for _, _, value in rows]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(rows)), 4))
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], before, width=0.4, label="active")
    ax.bar([i + 0.2 for i in x], after, width=0.4, label="candidate")
    ax.set_xticks(list(x), names)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def fmt(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def table(rows: list[tuple[str, Any, Any]], headers: tuple[str, str, str] = ("metric", "active", "candidate")) -> str:
    lines = [f"| {' | '.join(headers)} |", "|---|---|---|"]
    lines += [f"| {name} | {fmt(before)} | {fmt(after)} |" for name, before, after in rows]
    return "\n".join(lines)


def write(path: Path, sections: list[str]) -> Path:
    path.write_text("\n\n".join(sections).rstrip() + "\n")
    return path
