"""`assistant eval nlu --model` on a tiny fixture bot whose answers are known, checked against metrics
worked out by hand.

Every test sentence is a verbatim training sentence, so the real Rasa model trained here predicts its
training intent with high confidence; the test set's gold labels then decide the metrics:

    gold            predicted        routed        (LLM intent: out_of_scope)
    greet x3        greet            intent   ok
    goodbye x2      goodbye          intent   ok
    order_status x2 order_status     intent   ok
    order_status    greet ("hey")    intent   wrong
    out_of_scope x2 out_of_scope     LLM      ok
    out_of_scope    goodbye          intent   missed ("see you soon")

    in-scope accuracy 7/8; out-of-scope recall 2/3, precision 2/2
    greet:        P 3/4  R 3/3  F1 6/7        order_status: P 2/2  R 2/3  F1 4/5
    goodbye:      P 2/3  R 2/2  F1 4/5        out_of_scope: P 2/2  R 2/3  F1 4/5
    macro-F1 (6/7 + 3 * 4/5) / 4
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

from assistant.config import Settings
from plugins.nlu.rasa.runner import rasa_train
from tests.stack.test_cli import assistant

TRAINING = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello there
    - good morning
    - hi
    - hey
    - howdy friend
- intent: goodbye
  examples: |
    - bye bye
    - see you later
    - see you soon
    - farewell for now
- intent: order_status
  examples: |
    - where is my order
    - track my package
    - has my parcel shipped
    - when will my delivery arrive
- intent: out_of_scope
  examples: |
    - what is the meaning of life
    - tell me a joke
    - who won the football match
    - write me a poem about cats
"""

TEST_SET = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello there
    - good morning
    - hi
- intent: goodbye
  examples: |
    - bye bye
    - see you later
- intent: order_status
  examples: |
    - where is my order
    - track my package
    - hey
- intent: out_of_scope
  examples: |
    - what is the meaning of life
    - tell me a joke
    - see you soon
"""

PIPELINE = """recipe: default.v1
language: en
assistant_id: eval-fixture
pipeline:
  - name: WhitespaceTokenizer
  - name: CountVectorsFeaturizer
  - name: DIETClassifier
    epochs: 120
    entity_recognition: false
    constrain_similarities: true
    random_seed: 7
policies: []
"""

SETTINGS_FILE = """# fixture bot settings: the comment and the other keys must survive tuning
router:
  llm_intents: [out_of_scope]  # what the LLM answers
  confidence_threshold: 0.5
"""


@pytest.fixture(scope="module")
def fixture_bot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fixture-bot")
    (root / "data").mkdir()
    (root / "data" / "nlu.yml").write_text(TRAINING)
    (root / "config.yml").write_text(PIPELINE)
    (root / "test.yml").write_text(TEST_SET)
    (root / "var").mkdir()
    rasa_train(Settings(data_dir=root / "var"), root / "config.yml", root / "data", root / "models", "fixture")
    return root


def run_eval(bot: Path, tmp_path: Path, *extra: str) -> tuple[int, str, Path]:
    settings_file = tmp_path / "assistant.yml"
    if not settings_file.exists():
        settings_file.write_text(SETTINGS_FILE)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_ROUTER__")},
        "ASSISTANT_CONFIG": str(settings_file),
        "ASSISTANT_DATA_DIR": str(tmp_path / "var"),
    }
    out = tmp_path / "report"
    result = assistant("eval", "nlu", "--data", str(bot / "test.yml"), "--out", str(out), *extra, env=env)
    return result.returncode, result.stdout + result.stderr, out


def test_metrics_match_the_hand_computed_ones(fixture_bot: Path, tmp_path: Path) -> None:
    model = fixture_bot / "models" / "fixture.tar.gz"
    code, output, out = run_eval(fixture_bot, tmp_path, "--model", str(model))
    assert code == 0, output
    summary = json.loads((out / "metrics.json").read_text())
    metrics = summary["metrics"]
    assert summary["router"]["llm_intents"] == ["out_of_scope"]
    assert metrics["examples"] == 11 and metrics["in_scope_examples"] == 8 and metrics["oos_examples"] == 3
    assert metrics["in_scope_accuracy"] == pytest.approx(7 / 8)
    assert metrics["in_scope_routed_accuracy"] == pytest.approx(7 / 8)
    assert metrics["oos_recall"] == pytest.approx(2 / 3)
    assert metrics["oos_precision"] == pytest.approx(1.0)
    assert metrics["macro_f1"] == pytest.approx((6 / 7 + 3 * 4 / 5) / 4)
    report = json.loads((out / "intent_report.json").read_text())
    assert report["greet"]["precision"] == pytest.approx(3 / 4) and report["greet"]["recall"] == 1.0
    assert report["greet"]["f1-score"] == pytest.approx(6 / 7)
    assert report["goodbye"]["precision"] == pytest.approx(2 / 3) and report["goodbye"]["support"] == 2
    assert report["order_status"]["recall"] == pytest.approx(2 / 3)
    assert report["order_status"]["confused_with"] == {"greet": 1}
    assert report["out_of_scope"]["confused_with"] == {"goodbye": 1}
    assert "0.8750" in output  # the printed table


def test_tuning_writes_the_chosen_threshold_to_the_settings_file(fixture_bot: Path, tmp_path: Path) -> None:
    model = fixture_bot / "models" / "fixture.tar.gz"
    code, output, out = run_eval(
        fixture_bot, tmp_path, "--model", str(model), "--tune-on", str(fixture_bot / "test.yml"), "--max-drop", "0"
    )
    assert code == 0, output
    tuning = json.loads((out / "metrics.json").read_text())["tuning"]
    best = tuning["best"]
    assert tuning["max_drop"] == 0 and best["in_scope_accuracy"] == pytest.approx(7 / 8)  # costs no example
    text = (tmp_path / "assistant.yml").read_text()
    assert text.startswith("# fixture bot settings") and "# what the LLM answers" in text
    written = yaml.safe_load(text)["router"]
    assert written == {
        "llm_intents": ["out_of_scope"],
        "confidence_threshold": best["threshold"],
        "ambiguity_margin": best["margin"],
    }
    assert f"wrote router.confidence_threshold and router.ambiguity_margin to {tmp_path / 'assistant.yml'}" in output


def test_unknown_model_version_is_a_clear_error(fixture_bot: Path, tmp_path: Path) -> None:
    code, output, _ = run_eval(fixture_bot, tmp_path, "--model", "nlu-9999")
    assert code == 1 and "no model version 'nlu-9999'" in output
    code, output, _ = run_eval(fixture_bot, tmp_path, "--model", str(tmp_path / "missing.tar.gz"))
    assert code == 1 and "missing.tar.gz is not a file" in output
    code, output, _ = run_eval(fixture_bot, tmp_path, "--tune-on", str(fixture_bot / "test.yml"), "--max-drop", "-1")
    assert code != 0 and "--max-drop" in output
