"""The command line against the running stack, and its sentences on failure."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import LLM_TALK, Stack, dialogue


def assistant(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wiring", *args],
        env={**env, "COLUMNS": "200", "NO_COLOR": "1"},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_chat_streams_replies_in_the_terminal(stack: Stack) -> None:
    result = assistant("chat", "--sender", "terminal", env=stack.env, stdin=f"are you a bot\n{LLM_TALK[0]}\n/quit\n")
    assert result.returncode == 0, result.stderr
    assert "I'm Penny, a virtual assistant" in result.stdout
    assert "(intent: confident" in result.stdout and "(llm: low_selection" in result.stdout
    _, bot = stack.turn("terminal")
    assert bot["text"] in result.stdout.replace("\n", "")


def test_status_lists_services_and_models(stack: Stack) -> None:
    result = assistant("status", env=stack.env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Rasa: 3.6.21" in result.stdout and "active: base" in result.stdout


def test_status_says_when_the_assistant_is_down() -> None:
    result = assistant("status", "--url", "http://127.0.0.1:9", env=dict(os.environ))
    rows = [[cell.strip() for cell in line.split("│")[1:-1]] for line in result.stdout.splitlines()]
    assert result.returncode == 1 and ["assistant", "no"] in [row[:2] for row in rows], result.stdout


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


def test_up_uses_already_running_servers(stack: Stack, tmp_path: Path) -> None:
    """With rasa/vllm `managed: false`, `assistant up` starts only the app, against the given URLs.

    This app also starts the LLM speculatively (while Rasa parses): intent turns still get their
    templated reply, LLM turns their generated one."""
    import signal
    import threading
    import time

    import httpx

    from tests.conftest import free_port

    port = free_port()
    env = {
        **stack.env,
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_DATA_DIR": str(tmp_path),  # its own run state; the same log database as the stack
        "ASSISTANT_DATABASE_URL": stack.db.url,
        "ASSISTANT_RASA__MANAGED": "false",
        "ASSISTANT_VLLM__MANAGED": "false",
        "ASSISTANT_ACTION_SERVER__MANAGED": "false",  # the stack's action server serves it too
        "ASSISTANT_LLM__SPECULATIVE_START": "true",
        "COLUMNS": "200",
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "wiring", "up"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []  # read as it comes, so the test can wait for the "is up" table
    reader = threading.Thread(target=lambda: lines.extend(process.stdout), daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + 120
        while not any("Talk to it" in line for line in lines) and time.monotonic() < deadline:
            assert process.poll() is None, "".join(lines)
            time.sleep(0.5)
        assert any("Talk to it" in line for line in lines), f"not up within 120 s:\n{''.join(lines)}"
        reply = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/rest/webhook", json={"sender": "ext", "message": "are you a bot"}
        )
        assert reply.json()[0]["text"].startswith("I'm Penny, a virtual assistant")
        assert stack.turn("ext")[1]["route"] == "intent"
        chat = httpx.post(
            f"http://127.0.0.1:{port}/webhooks/rest/webhook",
            json={"sender": "ext", "message": LLM_TALK[0]},
            timeout=60,
        )
        _, bot = stack.turn("ext")
        assert (bot["route"], bot["answered_by"], bot["error"]) == ("llm", "base", None)
        assert chat.json()[0]["text"] == bot["text"] and bot["prompt_tokens"] > 0
        assert json.loads(bot["prompt"])[0]["role"] == "system"
        assert [m["role"] for m in dialogue(bot)] == ["user", "assistant", "user"]
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends (the stack's own shutdown test uses SIGTERM)
        stopping = time.monotonic()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            reader.join(timeout=10)
            pytest.fail(f"`assistant up` still running 60 s after Ctrl-C:\n{''.join(lines)[-4000:]}")
        reader.join(timeout=10)
    output = "".join(lines)
    print(f"stopped {time.monotonic() - stopping:.1f} s after Ctrl-C")
    assert process.returncode == 0, output
    assert f"{stack.rasa_url} (external)" in output and f"{stack.vllm_url} (external)" in output
    assert "starting rasa" not in output and "rasa healthy" not in output
    assert "stopped" in output
    assert stack.status()["nlu"]["ok"]  # the external servers were left running


def test_review_labels_llm_routed_messages_from_the_terminal(stack: Stack) -> None:
    message = stack.stream("review-me", LLM_TALK[2])
    assert message["route"] == "llm"
    # newest first: this message is the first shown; "loyalty_points" labels it, then q quits
    result = assistant("review", "--limit", "3", env=stack.env, stdin="loyalty_points\nq\n")
    assert result.returncode == 0, result.stderr
    assert LLM_TALK[2] in result.stdout and "labelled loyalty_points" in result.stdout
    rows = stack.rows("SELECT intent FROM labels WHERE message_id = ?", message["user_message_id"])
    assert rows == [{"intent": "loyalty_points"}]


def test_export_writes_training_data_and_refuses_unknown_kinds(stack: Stack, tmp_path: Path) -> None:
    nlu = assistant("export", "nlu", "--out", str(tmp_path / "nlu"), env=stack.env)
    assert nlu.returncode == 0, nlu.stderr
    exported = yaml.safe_load((tmp_path / "nlu" / "nlu.yml").read_text())
    assert exported["version"] == "3.1" and any(item.get("intent") == "greet" for item in exported["nlu"])
    sft = assistant("export", "sft", "--out", str(tmp_path / "sft"), env=stack.env)
    assert sft.returncode == 0, sft.stderr
    assert (tmp_path / "sft" / "sft_train.jsonl").exists() and (tmp_path / "sft" / "sft_validation.jsonl").exists()
    wrong = assistant("export", "pictures", "--out", str(tmp_path / "x"), env=stack.env)
    assert wrong.returncode == 1 and "choose nlu or sft" in wrong.stderr


def test_models_commands_explain_bad_input(stack: Stack) -> None:
    listed = assistant("models", "list", env=stack.env)
    assert listed.returncode == 0 and "nlu-0001" in listed.stdout
    unknown = assistant("models", "activate", "nlu-0999", env=stack.env)
    assert unknown.returncode == 1 and "no model version 'nlu-0999'" in unknown.stderr
    kind = assistant("models", "rollback", "vision", env=stack.env)
    assert kind.returncode == 1 and "choose nlu or llm" in kind.stderr
    both = assistant("retrain", "--nlu-only", "--llm-only", env=stack.env)
    assert both.returncode == 1 and "exclude each other" in both.stderr


def test_serve_refuses_a_channel_without_its_options(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "ASSISTANT_DATA_DIR": str(tmp_path),
        "ASSISTANT_CONFIG": str(tmp_path / "none.yml"),
        "ASSISTANT_CHANNELS": '["rest", "telegram"]',
        "ASSISTANT_CHANNEL__TELEGRAM__TOKEN": "1:abc",
    }
    result = assistant("serve", env=env)
    assert result.returncode == 1
    assert "the telegram channel is enabled but its options are wrong (secret_token: Field required)" in " ".join(
        result.stderr.split()
    )
