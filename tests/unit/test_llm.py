"""`assistant eval llm`'s run (evaluation/llm.py) with a fake LLM that implements the contract: every case of a
set answered through the live reply path, the set's figures by hand, and the report written."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.contracts import ServingState
from evaluation.llm import EvalFailed, evaluate_model, write_report
from evaluation.sets import load_sets
from tests.unit.fakes import FakeLLM

BEHAVIOUR = """name: manners
kind: behaviour
cases:
  - {id: one, message: how are you}
  - {id: two, message: are you a person, checks: [not_human]}
"""


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    (tmp_path / "manners.yml").write_text(BEHAVIOUR)
    return Settings(data_dir=tmp_path)


async def test_each_case_is_answered_and_the_figures_add_up(settings: Settings, tmp_path: Path) -> None:
    sets = load_sets([tmp_path / "manners.yml"])
    llm = FakeLLM(settings, ServingState("base"))
    llm.script.pieces = ["Fine, ", "thanks ", "for asking."]
    run = await evaluate_model(settings, llm, "base", sets, concurrency=1)
    assert [model for model, _ in llm.calls] == ["base", "base"]
    assert [r.reply for r in run.results] == ["Fine, thanks for asking."] * 2
    (figures,) = run.sets
    assert (figures.name, figures.kind, figures.cases) == ("manners", "behaviour", 2)
    assert figures.metrics["words_median"] == 4 and figures.metrics["looping"] == 0.0
    assert figures.metrics["checks_passed"] == 1.0 and figures.metrics["errors"] == 0.0
    assert figures.checks["not_human"] == 1.0 and figures.guards == {}
    report = write_report(tmp_path / "report", run, None, "LLM evaluation")
    assert "manners" in report.read_text()


async def test_a_model_that_answers_nothing_fails_the_run(settings: Settings, tmp_path: Path) -> None:
    llm = FakeLLM(settings, ServingState("base"))
    llm.script.fail = True
    with pytest.raises(EvalFailed, match="answered none of the 2 cases"):
        await evaluate_model(settings, llm, "base", load_sets([tmp_path / "manners.yml"]), concurrency=1)
