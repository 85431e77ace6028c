"""Bad input gets a clear 4xx and stores nothing; the REST channel answers exactly like Rasa's."""

from __future__ import annotations

import json
import subprocess

import pytest

from assistant.config import Settings
from tests.conftest import LLM_TALK, Stack


def count(stack: Stack, sender: str) -> int:
    return stack.rows(
        "SELECT count(*) AS n FROM messages m JOIN conversations c ON c.id = m.conversation_id WHERE c.sender_id = ?",
        sender,
    )[0]["n"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('{"sender": "bad", "message": ', "not valid JSON"),
        ('["sender", "message"]', "body"),
        ('{"message": "hi"}', "sender: Field required"),
        ('{"sender": "bad"}', "message: Field required"),
        ('{"sender": "bad", "message": 5}', "message: Input should be a valid string"),
        ('{"sender": "bad", "message": "   "}', "message must not be empty"),
        ('{"sender": "", "message": "hi"}', "sender: String should have at least 1 character"),
        ('{"sender": "bad", "message": "hi", "metadata": "x"}', "metadata: Input should be a valid dictionary"),
    ],
)
@pytest.mark.parametrize("endpoint", ["webhook", "stream"])
def test_malformed_requests_get_422_with_a_message(stack: Stack, endpoint: str, body: str, expected: str) -> None:
    response = stack.http.post(
        f"{stack.url}/webhooks/rest/{endpoint}", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert expected in response.json()["message"]
    assert count(stack, "bad") == 0


@pytest.mark.parametrize("endpoint", ["webhook", "stream"])
def test_over_long_message_gets_413_and_is_not_stored(stack: Stack, endpoint: str) -> None:
    response = stack.http.post(
        f"{stack.url}/webhooks/rest/{endpoint}", json={"sender": f"long-{endpoint}", "message": "a" * 4097}
    )
    assert response.status_code == 413
    assert response.json()["message"] == "message is 4097 characters long; the limit is 4096"
    assert count(stack, f"long-{endpoint}") == 0


def test_message_at_the_limit_is_accepted_and_stored(stack: Stack) -> None:
    text = ("where is my order " * 300)[:4096]
    response = stack.send("at-limit", text)
    assert response.status_code == 200
    user, bot = stack.turn("at-limit")
    assert user["text"] == text and bot["text"] == response.json()[0]["text"]


def test_rasa_rest_contract(stack: Stack) -> None:
    """Existing Rasa REST clients work unchanged: same path, same body, same answer shape."""
    response = stack.send("rasa-client", "goodbye")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == [{"recipient_id": "rasa-client", "text": "Goodbye, have a lovely day!"}]
    assert stack.http.get(f"{stack.url}/webhooks/rest/").json() == {"status": "ok"}


CONSOLE = """
import asyncio, json, sys
from rasa.core.channels.console import _send_message_receive_stream

async def main():
    async for message in _send_message_receive_stream(sys.argv[1], "no-token", "rasa-console", sys.argv[2]):
        print(json.dumps(message))

asyncio.run(main())
"""


def test_rasa_console_client_in_stream_mode_gets_one_message_per_line(stack: Stack) -> None:
    """Rasa's own console client (what `rasa shell` uses), from the Rasa environment, in stream mode."""
    rasa_env = Settings().rasa.python_env
    assert rasa_env is not None, "run scripts/setup.sh first"
    rasa_python = rasa_env / "bin" / "python"
    for text, expected in (("goodbye", "Goodbye, have a lovely day!"), (LLM_TALK[0], None)):
        result = subprocess.run(
            [str(rasa_python), "-c", CONSOLE, stack.url, text], capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, result.stderr[-3000:]
        messages = [json.loads(line) for line in result.stdout.splitlines()]
        assert messages and all(m["recipient_id"] == "rasa-console" for m in messages)
        assert messages[0]["text"].strip() and (expected is None or messages[0]["text"] == expected)
