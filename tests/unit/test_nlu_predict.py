"""Classifying an evaluation set (evaluation/nlu_predict.py) with any NLU backend, here a fake one."""

from __future__ import annotations

from pathlib import Path

from assistant.config import Settings
from assistant.contracts import Example, ServingState
from evaluation import nlu_predict
from tests.unit.fakes import FakeNLU


async def test_examples_are_read_without_markup_and_each_is_classified(tmp_path: Path) -> None:
    data = tmp_path / "test.yml"
    data.write_text(
        'version: "3.1"\nnlu:\n- intent: order_status\n  examples: |\n    - where is order [4711](order_id)\n'
        "- intent: greet\n  examples: |\n    - hello\n    - hmm maybe\n"
    )
    examples = nlu_predict.test_examples(data)  # (imported as a module: pytest would collect it)
    assert examples == [
        Example("where is order 4711", "order_status"), Example("hello", "greet"), Example("hmm maybe", "greet")
    ]  # fmt: skip
    predictions = await nlu_predict.predict(FakeNLU(Settings(), ServingState("base")), examples)
    assert [(p.text, p.gold, p.intent, p.confidence) for p in predictions] == [
        ("where is order 4711", "order_status", "order_status", 0.9),
        ("hello", "greet", "greet", 0.95),
        ("hmm maybe", "greet", "greet", 0.3),
    ]
    assert predictions[2].ranking == [("greet", 0.3), ("goodbye", 0.2)] and predictions[2].selected is None
