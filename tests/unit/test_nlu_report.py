"""Report pieces (evaluation/nlu_report.py): the metric tables and the plots."""

from __future__ import annotations

from pathlib import Path

from evaluation.nlu_metrics import Prediction
from evaluation.nlu_report import confusion_png, loss_png, metrics_png, table, write

PNG = b"\x89PNG\r\n\x1a\n"


def test_tables_show_figures_to_four_decimals_and_missing_ones_as_a_dash(tmp_path: Path) -> None:
    text = table([("in_scope_accuracy", 0.96666, 1.0), ("oos_recall", None, 0.5), ("examples", 71, 71)])
    assert text.splitlines() == [
        "| metric | active | candidate |",
        "|---|---|---|",
        "| in_scope_accuracy | 0.9667 | 1.0000 |",
        "| oos_recall | - | 0.5000 |",
        "| examples | 71 | 71 |",
    ]
    report = write(tmp_path / "report.md", ["# Title", text, ""])
    assert report.read_text() == "# Title\n\n" + text + "\n"


def test_the_plots_are_pngs(tmp_path: Path) -> None:
    predictions = [
        Prediction("hi", "greet", "greet", 0.9, [("greet", 0.9)]),
        Prediction("bye", "goodbye", "greet", 0.6, [("greet", 0.6), ("goodbye", 0.3)]),
    ]
    made = [
        confusion_png(predictions, tmp_path / "confusion.png", "NLU"),
        loss_png(
            [{"step": 1, "train_loss": 2.0}, {"step": 2, "train_loss": 1.5, "validation_loss": 1.7}], tmp_path / "l.png"
        ),
        metrics_png([("in_scope_accuracy", 0.9, 0.95)], tmp_path / "metrics.png", "NLU"),
    ]
    assert all(path.read_bytes().startswith(PNG) for path in made)
