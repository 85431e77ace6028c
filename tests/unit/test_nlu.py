"""`assistant eval nlu`'s run (evaluation/nlu.py) with a fake NLU that implements the contract: the figures on
examples worked out by hand, the files it writes, and tuned router values written back keeping comments."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from assistant.config import Settings
from assistant.contracts import ServingState
from evaluation.nlu import run_eval, write_router_config
from tests.unit.fakes import FakeNLU

TEST_SET = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
- intent: order_status
  examples: |
    - where is order [4711](order_id)
- intent: goodbye
  examples: |
    - hmm maybe
- intent: chitchat
  examples: |
    - tell me a joke
- intent: out_of_scope
  examples: |
    - who won the world cup
"""


async def test_the_figures_and_the_report(tmp_path: Path) -> None:
    data = tmp_path / "test.yml"
    data.write_text(TEST_SET)
    settings = Settings(data_dir=tmp_path)
    nlu = FakeNLU(settings, ServingState("base"))
    summary = await run_eval(settings, nlu, data, tmp_path / "out", tune_on=None)
    metrics = summary.metrics
    # in scope: greet and order_status right, "hmm maybe" taken as greet (and too unsure: the LLM's)
    assert (metrics["examples"], metrics["in_scope_examples"], metrics["oos_examples"]) == (5, 3, 2)
    assert metrics["in_scope_accuracy"] == 2 / 3 and metrics["oos_recall"] == 1.0
    assert metrics["oos_precision"] == 2 / 3  # three went to the LLM, two of them should have
    assert metrics["confused"] == [{"gold": "goodbye", "predicted": "greet", "count": 1}]
    out = tmp_path / "out"
    assert {p.name for p in out.iterdir()} >= {"metrics.json", "predictions.json", "report.md", "confusion.png"}
    predicted = {p["text"]: p["label"] for p in json.loads((out / "predictions.json").read_text())}
    assert predicted["where is order 4711"] == "order_status"  # the entity markup removed before parsing
    assert "| in_scope_accuracy | 0.6667 |" in (out / "report.md").read_text()


def test_tuned_values_go_under_router_and_the_rest_stays(tmp_path: Path) -> None:
    config = tmp_path / "assistant.yml"
    config.write_text("# my settings\nport: 9000  # not 8080\nrouter:\n  llm_intents: [chitchat]\n")
    write_router_config(config, 0.42, 0.05)
    text = config.read_text()
    assert "# my settings" in text and "# not 8080" in text
    assert yaml.safe_load(text) == {
        "port": 9000,
        "router": {"llm_intents": ["chitchat"], "confidence_threshold": 0.42, "ambiguity_margin": 0.05},
    }
