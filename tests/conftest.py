"""The real stack, once per test session: `assistant up` starts real Rasa (training the demo bot's model
if needed), real vLLM and the app on free ports, with a fresh log database (SQLite, or PostgreSQL with
ASSISTANT_TEST_STACK_DATABASE=postgres: tests/database.py). Tests drive its HTTP API and read the database
directly.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from assistant.infra.services import free_port
from tests.database import STACK_DATABASE, TestDatabase, last_turn
from tests.standins import HostSite, SlackAPI, TelegramAPI

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "bots" / "demo"  # the demo bot the stack runs
STACK_DIR = REPO / "var" / "test-stack"  # keeps the trained NLU model between local runs
ADMIN_TOKEN = "test-admin-token"
# the stack's Rasa and vLLM require these, as `assistant up` makes them do with generated ones
RASA_TOKEN, VLLM_API_KEY = "test-rasa-auth-token", "test-vllm-api-key-0"
RASA_AUTH, VLLM_AUTH = {"token": RASA_TOKEN}, {"Authorization": f"Bearer {VLLM_API_KEY}"}
SLACK_TOKEN, SLACK_SECRET = "xoxb-test-token", "slack-signing-secret"
TELEGRAM_TOKEN, TELEGRAM_SECRET = "123456:TEST-token", "telegram-webhook-secret"
ARTIFACTS = Path(os.environ.get("ASSISTANT_TEST_ARTIFACTS", REPO / "var" / "test-artifacts"))
# Small talk no curated reply covers (the demo's chitchat with an unsure selection): the LLM answers these.
# Checked on the demo model with its chitchat data; "tell me a joke" or "how are you" get a written reply.
LLM_TALK = ("do you believe in ghosts", "what superpower would you pick", "describe your perfect sunday")


def dialogue(bot: dict[str, Any]) -> list[dict[str, str]]:
    """An LLM turn's prompt without its system message and the curated examples shown before the conversation
    (``generation.examples`` of them): the history and the message."""

    def loaded(value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    examples = loaded(bot["generation"]).get("examples", 0)
    return list(loaded(bot["prompt"])[1 + 2 * examples :])


# at the end: the fuzzer writes labels and feedback on whatever ids exist; the others stop parts of the stack
LAST = {"fuzz": 1, "faults": 2, "shutdown": 3}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        return max((LAST.get(mark.name, 0) for mark in item.iter_markers()), default=0)

    items.sort(key=rank)
    if STACK_DATABASE == "postgres":  # the Postgres pass of `make test`: only what depends on the database
        others = [item for item in items if item.get_closest_marker("database") is None]
        config.hook.pytest_deselected(items=others)
        items[:] = [item for item in items if item.get_closest_marker("database") is not None]


STORE_URLS = ["sqlite"] + (["postgres"] if os.environ.get("ASSISTANT_TEST_POSTGRES_URL") else [])


@pytest.fixture(params=STORE_URLS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database: a SQLite file, and Postgres too when ASSISTANT_TEST_POSTGRES_URL names one."""
    from alembic import command

    from assistant.store.migrations.migrate import alembic_config, upgrade

    if request.param == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'store.db'}"
    else:
        url = os.environ["ASSISTANT_TEST_POSTGRES_URL"]
        command.downgrade(alembic_config(url), "base")  # empty: every test starts from nothing
    upgrade(url)  # the migrations themselves are under test too
    return url


@dataclass
class Stack:
    url: str
    rasa_url: str
    vllm_url: str
    db: TestDatabase
    data_dir: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    log_path: Path
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))

    def send(self, sender: str, message: str, **extra: Any) -> httpx.Response:
        return self.http.post(f"{self.url}/webhooks/rest/webhook", json={"sender": sender, "message": message, **extra})

    def stream(self, sender: str, message: str) -> dict[str, Any]:
        """One turn through the SSE endpoint; returns its ``message`` event (ids, route, model, ...)."""
        event, found = "", None
        with self.http.stream(
            "POST", f"{self.url}/webhooks/rest/stream", json={"sender": sender, "message": message}
        ) as response:
            assert response.status_code == 200
            for line in response.iter_lines():
                if line.startswith("event: "):
                    event = line.removeprefix("event: ")
                elif line.startswith("data: ") and event == "message":
                    found = json.loads(line.removeprefix("data: "))
        assert found is not None, "the stream ended without its message event"
        return found

    def admin(self, path: str, body: dict[str, Any], token: str | None = ADMIN_TOKEN) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.http.post(f"{self.url}/api{path}", json=body, headers=headers)

    def reply(self, sender: str, message: str) -> str:
        response = self.send(sender, message)
        assert response.status_code == 200, response.text
        reply, *custom = response.json()  # a reply with sources: then its citations, as a custom element
        assert reply["recipient_id"] == sender and all(c.get("custom", {}).get("citations") for c in custom)
        return reply["text"]

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        return self.db.rows(sql, *params)

    def turn(self, sender: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The last (user row, bot row) of a sender's conversation."""
        return last_turn(self.rows, sender)

    def services(self) -> dict[str, dict[str, Any]]:
        return json.loads((self.data_dir / "run" / "services.json").read_text())

    def status(self) -> dict[str, Any]:
        """The app's /status with its details (the admin token's view)."""
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        return self.http.get(f"{self.url}/status", headers=headers, timeout=30).json()

    def wait_until(self, predicate: Any, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"`assistant up` exited while waiting for {what}:\n{self.log_path.read_text()[-3000:]}")
            try:
                if predicate():
                    return
            except (httpx.HTTPError, OSError, LookupError, ValueError):
                pass
            time.sleep(1)
        pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}:\n{self.log_path.read_text()[-3000:]}")

    def signal_service(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.services()[name]["pid"], sig)


@pytest.fixture(scope="session")
def slack_api() -> Iterator[SlackAPI]:
    server = SlackAPI(SLACK_TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[TelegramAPI]:
    server = TelegramAPI(TELEGRAM_TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="session")
def host_site() -> Iterator[HostSite]:
    server = HostSite()
    yield server
    server.close()


@pytest.fixture(scope="session")
def stack(slack_api: SlackAPI, telegram_api: TelegramAPI, host_site: HostSite) -> Iterator[Stack]:
    STACK_DIR.mkdir(parents=True, exist_ok=True)
    (STACK_DIR / "run" / "services.json").unlink(missing_ok=True)
    db = TestDatabase.for_tests("assistant_stack", STACK_DIR / "assistant.db")
    # what earlier sessions' retrains made: the registry starts empty again, so must the files
    for folder in ("adapters", "reports", "retrain", "rasa-models/active"):
        shutil.rmtree(STACK_DIR / folder, ignore_errors=True)
    for model in (STACK_DIR / "rasa-models").glob("nlu-[0-9][0-9][0-9][0-9].tar.gz"):  # not the bot's own model
        model.unlink()
    port, rasa_port, vllm_port, actions_port = free_port(), free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "ASSISTANT_CONFIG": str(STACK_DIR / "no-config.yml"),
        "ASSISTANT_DATA_DIR": str(STACK_DIR),
        "ASSISTANT_DATABASE_URL": db.url,
        "ASSISTANT_PORT": str(port),
        "ASSISTANT_RASA__URL": f"http://127.0.0.1:{rasa_port}",
        "ASSISTANT_VLLM__URL": f"http://127.0.0.1:{vllm_port}",
        "ASSISTANT_ACTION_SERVER__URL": f"http://127.0.0.1:{actions_port}/webhook",
        "ASSISTANT_RASA__TIMEOUT_S": "2",
        "ASSISTANT_LLM__TIMEOUT_S": "10",
        "ASSISTANT_LLM__MAX_TOKENS": "40",
        "ASSISTANT_LLM__TEMPERATURE": "0",
        # the demo's 59 held-out NLU examples move macro-F1 by ~0.017 per example: a fine-tuned candidate one example
        # worse is noise, not a regression, for the tests that follow a promotion (unverified on the stack yet)
        "ASSISTANT_TRAINING__NLU_TOLERANCE": "0.03",
        "ASSISTANT_TRAINING__LLM_EVAL_LIMIT": "8",  # the gate's evaluation on a stable sample of each set (CI time)
        "ASSISTANT_LLM__STARTER_ADAPTER": "false",  # the base model, as the tests expect (test_starter.py: on)
        "ASSISTANT_ADMIN_TOKEN": ADMIN_TOKEN,
        "ASSISTANT_RASA__TOKEN": RASA_TOKEN,
        "ASSISTANT_VLLM__API_KEY": VLLM_API_KEY,
        # every test client is 127.0.0.1: the rate limits (unit-tested) are raised above what the tests send
        "ASSISTANT_LIMITS__PER_SENDER": "1000/minute",
        "ASSISTANT_LIMITS__PER_ADDRESS": "100000/minute",
        "ASSISTANT_CHANNELS": '["rest", "web", "slack", "telegram", "socketio"]',
        "ASSISTANT_CHANNEL__SOCKETIO__SESSION_PERSISTENCE": "true",
        "ASSISTANT_CHANNEL__SLACK__BOT_TOKEN": SLACK_TOKEN,
        "ASSISTANT_CHANNEL__SLACK__SIGNING_SECRET": SLACK_SECRET,
        "ASSISTANT_CHANNEL__SLACK__API_URL": f"{slack_api.url}/api/",
        "ASSISTANT_CHANNEL__TELEGRAM__TOKEN": TELEGRAM_TOKEN,
        "ASSISTANT_CHANNEL__TELEGRAM__SECRET_TOKEN": TELEGRAM_SECRET,
        "ASSISTANT_CHANNEL__TELEGRAM__API_URL": f"{telegram_api.url}/bot",
        "ASSISTANT_CORS_ORIGINS": json.dumps([host_site.url]),
        "ASSISTANT_DELIVERY__BACKOFF_BASE_S": "0.5",
    }
    host_site.assistant_url = f"http://127.0.0.1:{port}"
    log_path = STACK_DIR / "up.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "wiring", "up"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    stack = Stack(
        url=f"http://127.0.0.1:{port}",
        rasa_url=env["ASSISTANT_RASA__URL"],
        vllm_url=env["ASSISTANT_VLLM__URL"],
        db=db,
        data_dir=STACK_DIR,
        env=env,
        process=process,
        log_path=log_path,
    )
    try:
        stack.wait_until(lambda: "assistant is up" in log_path.read_text(), 900, "`assistant up` to be ready")
        yield stack
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                process.kill()
        stack.http.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, for the widget tests."""
    from playwright.sync_api import expect, sync_playwright

    # `expect` waits 5 s by default, not the page's timeout: an LLM reply on two busy cores can take longer
    expect.set_options(timeout=60_000)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=shutil.which("chromium") or "/usr/bin/chromium", headless=True
        )
        yield browser
        browser.close()
