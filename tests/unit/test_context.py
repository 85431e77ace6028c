"""Known errors end a command with their sentence and exit code 1; anything else is a bug and keeps its
traceback; --debug shows the traceback for both."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from assistant.contracts import AssistantError
from wiring.cli import app as real_app
from wiring.cli.context import DEBUG, command

app = typer.Typer()


@command(app, "known")
def known() -> None:
    raise AssistantError("the model file of nlu-0003 is gone")


@command(app, "bug")
def bug() -> None:
    raise ZeroDivisionError("a bug")


def test_known_errors_are_a_sentence_and_exit_1() -> None:
    result = CliRunner().invoke(app, ["known"])
    assert result.exit_code == 1
    assert "error: the model file of nlu-0003 is gone" in result.output and "Traceback" not in result.output


def test_bugs_keep_their_traceback() -> None:
    result = CliRunner().invoke(app, ["bug"])
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


def test_debug_shows_the_traceback_of_known_errors_too() -> None:
    DEBUG["on"] = True
    try:
        result = CliRunner().invoke(app, ["known"])
    finally:
        DEBUG["on"] = False
    assert isinstance(result.exception, AssistantError)


def test_the_real_cli_takes_debug_and_refuses_bad_options_with_a_sentence() -> None:
    assert "--debug" in CliRunner().invoke(real_app, ["--help"]).output
    result = CliRunner().invoke(real_app, ["models", "rollback", "everything"])
    assert result.exit_code == 1 and "cannot roll back 'everything': choose nlu or llm" in result.output
