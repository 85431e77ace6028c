"""The command line against the running stack, and its sentences on failure."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import Stack


def assistant(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "assistant", *args],
        env={**env, "COLUMNS": "200", "NO_COLOR": "1"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_chat_streams_replies_in_the_terminal(stack: Stack) -> None:
    result = assistant("chat", "--sender", "terminal", env=stack.env, stdin="are you a bot\nhow are you\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "I'm Penny, a virtual assistant" in result.stdout
    assert "(intent: confident" in result.stdout and "(llm: llm_intent" in result.stdout
    _, bot = stack.turn("terminal")
    assert bot["text"] in result.stdout.replace("\n", "")


def test_status_lists_services_and_models(stack: Stack) -> None:
    result = assistant("status", env=stack.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rasa: 3.6.21" in result.stdout and "active: base" in result.stdout


def test_status_says_when_the_assistant_is_down() -> None:
    result = assistant("status", "--url", "http://127.0.0.1:9", env=dict(os.environ))
    assert result.returncode == 1 and "assistant" in result.stdout and "no" in result.stdout


def test_train_without_rasa_fails_with_a_sentence(tmp_path: object) -> None:
    env = {
        **os.environ,
        "ASSISTANT_RASA__PYTHON_ENV": "/nonexistent",
        "PATH": "/usr/bin:/bin",
        "ASSISTANT_DATA_DIR": str(tmp_path),
    }
    result = assistant("train", "nlu", env=env)
    assert result.returncode == 1
    assert "Rasa is not installed: run scripts/setup.sh" in result.stderr.replace("\n", " ")
