"""Rasa's NLU data read as Rasa reads it (evaluation/nlu_data.py)."""

from __future__ import annotations

from pathlib import Path

from evaluation.nlu_data import read_rasa_nlu
from training.export import write_rasa_nlu


def test_rasa_yaml_keeps_intents_named_like_yaml_booleans(tmp_path: Path) -> None:
    """CLINC150 has intents `yes` and `no`: YAML 1.1 would read them as booleans, Rasa (YAML 1.2) does not."""
    source = tmp_path / "in.yml"
    source.write_text(
        'version: "3.1"\nnlu:\n- intent: yes\n  examples: |\n    - yep\n- intent: no\n  examples: |\n    - nope\n'
    )
    examples, _ = read_rasa_nlu([source])
    assert [(e.text, e.intent) for e in examples] == [("yep", "yes"), ("nope", "no")]
    write_rasa_nlu(tmp_path / "out.yml", examples)
    again, _ = read_rasa_nlu([tmp_path / "out.yml"])
    assert {e.intent for e in again} == {"yes", "no"}
