"""`assistant eval nlu` against the stack's real Rasa, on the demo bot's held-out test set."""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import DEMO, Stack
from tests.stack.test_cli import assistant

TEST_SET = DEMO / "tests" / "test_nlu.yml"


def test_eval_nlu_reports_router_metrics_and_tunes_thresholds(stack: Stack, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    args = ["eval", "nlu", "--data", str(TEST_SET), "--tune-on", str(TEST_SET), "--out", str(out), "--no-write-config"]
    result = assistant(*args, "--url", stack.rasa_url, env=stack.env)
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "metrics.json").read_text())
    predictions = json.loads((out / "predictions.json").read_text())
    metrics, router = summary["metrics"], summary["router"]
    llm = set(router["llm_intents"])
    in_scope = [p for p in predictions if p["gold"] not in llm]
    assert metrics["examples"] == len(predictions) == 71
    # a retrieval intent's example is right when its selected key is (faq/ask_gift_cards)
    assert metrics["in_scope_accuracy"] == sum(p["label"] == p["gold"] for p in in_scope) / len(in_scope)
    faq = [p for p in predictions if p["gold"].startswith("faq/")]
    assert len(faq) == 6
    assert all(p["label"] == (p["selected"][0] if p["intent"] == "faq" else p["intent"]) for p in faq)
    assert sum(p["label"] == p["gold"] for p in faq) >= 4, faq
    assert 0 <= metrics["oos_recall"] <= 1 and metrics["oos_examples"] == len(predictions) - len(in_scope)
    best = summary["tuning"]["best"]
    assert router["confidence_threshold"] == best["threshold"] and router["ambiguity_margin"] == best["margin"]

    def objective(point: dict[str, float]) -> float:
        return point["in_scope_accuracy"] + point["oos_recall"]

    allowed = [g for g in summary["tuning"]["grid"] if g["allowed"]]
    assert best["allowed"] and objective(best) == max(objective(g) for g in allowed)
    for name in ("report.md", "confusion.png", "confidence.png", "threshold_sweep.png", "intent_report.json"):
        assert (out / name).stat().st_size > 0, name
    assert "in_scope_accuracy" in result.stdout


def test_eval_nlu_refuses_a_missing_file(stack: Stack) -> None:
    result = assistant("eval", "nlu", "--data", "/nonexistent/test.yml", env=stack.env)
    assert result.returncode == 1 and "/nonexistent/test.yml is not a file" in result.stderr
