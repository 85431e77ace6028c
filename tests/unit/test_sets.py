"""The evaluation sets' format (evaluation/sets.py): parts, kinds, and bad files refused with a sentence."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from evaluation.kb import (
    load_qa,
)
from evaluation.sets import BadEvalSet, load_sets


def test_eval_sets_load_by_part_and_refuse_bad_files(tmp_path: Path) -> None:
    sets = load_sets([Settings().bot_dir / "evals"])
    assert {s.name for s in sets} == {"smalltalk", "behaviour", "kb", "out_of_scope"}  # the tuning part is not reported
    (grounded,) = [s for s in sets if s.kind == "grounded"]
    assert sum(not c.answerable for c in grounded.cases) == 8 and all(c.gold for c in grounded.cases if c.answerable)
    declined, tune = load_sets([Settings().bot_dir / "evals"], "tune")  # by file name
    assert tune.name == "smalltalk-tune" and len(tune.cases) > 50
    (oos,) = [s for s in sets if s.kind == "declined"]
    assert declined.kind == "declined" and not {c.message for c in oos.cases} & {c.message for c in declined.cases}
    (talk,) = [s for s in sets if s.name == "smalltalk"]
    assert not {c.message for c in tune.cases} & {c.message for c in talk.cases}  # split by scenario
    assert len(tune.limited(10).cases) == 10 and tune.limited(10).cases == tune.limited(10).cases
    bad = tmp_path / "bad.yml"
    bad.write_text("name: x\nkind: reference\ncases:\n  - {message: hi}\n")
    with pytest.raises(BadEvalSet, match="need a `reference`"):
        load_sets([bad])
    bad.write_text("name: x\nkind: behaviour\ncases:\n  - {message: hi, checks: [be_nice]}\n")
    with pytest.raises(BadEvalSet, match="unknown checks be_nice"):
        load_sets([bad])
    bad.write_text("name: x\nkind: grounded\ncases:\n  - {message: do you ship to Norway}\n")
    with pytest.raises(BadEvalSet, match="answerable questions of a `grounded` set need a `reference`"):
        load_sets([bad])
    bad.write_text("name: x\nkind: grounded\ncases:\n  - {message: hi, answerable: maybe}\n")
    with pytest.raises(BadEvalSet, match="`answerable` is true or false"):
        load_sets([bad])
    with pytest.raises(BadEvalSet, match="neither"):
        load_sets([tmp_path / "missing"])


def test_questions_load_from_clapnq_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"id": "a", "question": "why is the sky blue", "answerable": true, "gold_passages": ["p1"],'
        ' "answers": ["Rayleigh scattering.", "Because of scattering."]}\n'
        '\n{"id": "b", "question": "who won in 1830", "answerable": false, "gold_passages": [], "answers": []}\n'
    )
    qa = load_qa(path)
    a, b = qa.cases
    assert (qa.kind, a.gold, a.answerable, a.reference) == (
        "grounded",
        ("p1",),
        True,
        "Rayleigh scattering.\nBecause of scattering.",
    )
    assert (b.answerable, b.reference) == (False, None)
    path.write_text("not json\n")
    with pytest.raises(BadEvalSet, match=r"qa\.jsonl, line 1"):
        load_qa(path)
