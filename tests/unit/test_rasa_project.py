"""`assistant init --from-rasa`: Rasa's own moodbot (tests/fixtures/rasa_moodbot, Apache-2.0) becomes a bot
directory; responses its rules and stories give to intents become utter_<intent>; what does not carry over
is said in sentences; bad input is a sentence and exit 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from assistant.domain import Domain
from wiring.cli import app as cli

MOODBOT = Path(__file__).resolve().parent.parent / "fixtures" / "rasa_moodbot"


def test_moodbot_becomes_a_bot_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    out = tmp_path / "moodbot"
    result = CliRunner().invoke(cli, ["init", "--from-rasa", str(MOODBOT), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {"config.yml", "domain.yml", "data", "persona.md", "tests", "actions"}
    data = yaml.safe_load((out / "data" / "nlu.yml").read_text())
    assert {b["intent"] for b in data["nlu"]} >= {"greet", "mood_great", "bot_challenge"}
    assert not (out / "data" / "stories.yml").exists() and not (out / "data" / "rules.yml").exists()
    domain = Domain.load(out)
    assert domain.render("utter_bot_challenge", {}) == "I am a bot, powered by Rasa."  # from a rule
    assert domain.render("utter_mood_great", {}) == "Great, carry on!"  # from a story
    cheer = domain.response("utter_mood_unhappy", {})
    assert cheer is not None and cheer.rich is not None and cheer.rich.image == "https://i.imgur.com/nGF1K8f.jpg"
    assert "intent mood_great answers with utter_happy" in said
    assert "3 stories and 2 rules are not carried over" in said
    assert "switches on these channels, as in Rasa: rest" in said and "no channel here, ignored: rasa." in said
    assert "only utter_cheer_up is sent" in said
    assert "actions/ is copied, but the domain declares no actions" in said  # the moodbot's are commented out
    assert f"assistant up --bot {out}" in said


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--from-rasa", "/nonexistent"], "is not a folder"),
        (["--from-rasa", str(Path(__file__).parent)], "is not a Rasa project: it has no config.yml"),
    ],
)
def test_bad_input_is_a_sentence(args: list[str], expected: str, tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["init", *args, "--out", str(tmp_path / "x")])
    assert result.exit_code == 1 and expected in " ".join(result.output.split())


def test_an_existing_bot_directory_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "domain.yml").write_text("keep me")
    result = CliRunner().invoke(cli, ["init", "--from-rasa", str(MOODBOT), "--out", str(tmp_path / "taken")])
    assert result.exit_code == 1 and "is not empty" in result.output
    assert (tmp_path / "taken" / "domain.yml").read_text() == "keep me"
    bad = CliRunner().invoke(cli, ["up", "--bot", str(tmp_path)])
    assert bad.exit_code == 1 and "is not a bot directory" in " ".join(bad.output.split())


def test_a_rule_answered_by_a_custom_action_keeps_its_action(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The moodbot with what a Rasa user adds: a rule answers mood_great with a custom action, so the domain's
    ``answers:`` names it, the action endpoint is Rasa's default, and the pipeline calls that action."""
    from tests.rasa_projects import moodbot_plus

    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    project, out = moodbot_plus(tmp_path / "project"), tmp_path / "bot"
    result = CliRunner().invoke(cli, ["init", "--from-rasa", str(project), "--out", str(out)])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    domain = Domain.load(out)
    assert domain.action_for("mood_great") == "action_remember_mood"
    assert domain.action_for("greet") == "action_greet"  # no rule names an action: the default name
    assert domain.actions == ["action_remember_mood"]
    assert "intent mood_great answers with action_remember_mood" in said
    assert "serves actions/ with rasa-sdk" in said and "Rasa's default, http://localhost:5055/webhook" in said
    assert yaml.safe_load((out / "endpoints.yml").read_text())["action_endpoint"] == {
        "url": "http://localhost:5055/webhook"
    }
    assert (out / "actions" / "mood.py").is_file() and (out / "data" / "chitchat.yml").is_file()
    greet = domain.response("utter_greet", {})
    assert greet is not None and greet.rich is not None and [b["payload"] for b in greet.rich.buttons] == [
        "/mood_great", "/mood_unhappy"
    ]  # fmt: skip
    assert domain.render("utter_goodbye", {"mood": "great"}) == "Bye, and stay great!"
    assert domain.render("utter_goodbye", {}) == "Bye"
    assert domain.render("utter_chitchat/ask_name", {}) == "I'm Moody, the mood bot."


def test_a_fallback_rule_is_not_copied(tmp_path: Path) -> None:
    """Rasa's nlu_fallback rule (answer an unsure message with a "please rephrase"): unsure messages go to the
    LLM here, so the rule is reported, not turned into a response for an intent."""
    project = tmp_path / "project"
    shutil.copytree(MOODBOT, project)
    rules = yaml.safe_load((project / "data" / "rules.yml").read_text())
    rules["rules"].append(
        {"rule": "Ask to rephrase", "steps": [{"intent": "nlu_fallback"}, {"action": "utter_goodbye"}]}
    )
    (project / "data" / "rules.yml").write_text(yaml.safe_dump(rules))
    result = CliRunner().invoke(cli, ["init", "--from-rasa", str(project), "--out", str(tmp_path / "bot")])
    said = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "rule 'Ask to rephrase' answers nlu_fallback (Rasa's FallbackClassifier) with utter_goodbye" in said
    assert "utter_nlu_fallback" not in Domain.load(tmp_path / "bot").responses
