"""Two app replicas (`assistant serve` twice, as behind a load balancer) on one real PostgreSQL, sharing the
stack's Rasa and vLLM: they migrate the empty database together, every Telegram update is answered exactly
once whichever replica took it (and whichever replica's outbox worker delivered it, retries included), a
conversation spread over both stays one conversation in order, and retrains on different hosts refuse
each other through the database lock."""

from __future__ import annotations

import asyncio
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from assistant.store import Store, locks
from tests.conftest import TELEGRAM_SECRET, TELEGRAM_TOKEN, Stack, free_port
from tests.stack.test_telegram import update
from tests.standins import TelegramAPI

POSTGRES_URL = os.environ.get("ASSISTANT_TEST_POSTGRES_URL")
# not marked `database`: the replicas run on PostgreSQL whatever the stack's database, so the Postgres pass would
# only repeat this module
pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="needs ASSISTANT_TEST_POSTGRES_URL (`make test` starts PostgreSQL and sets it)"
)
TOO_MANY_REQUESTS = (
    429,
    {"Retry-After": "1"},
    {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    },
)


@dataclass
class Replica:
    url: str
    process: subprocess.Popen[str]
    log_path: Path

    def post(self, payload: dict[str, Any]) -> httpx.Response:
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
        return httpx.post(f"{self.url}/webhooks/telegram/webhook", json=payload, headers=headers, timeout=60)


@pytest.fixture(scope="module")
def telegram() -> Iterator[TelegramAPI]:
    server = TelegramAPI(TELEGRAM_TOKEN)
    yield server
    server.close()


@pytest.fixture(scope="module")
def replica_env(stack: Stack, telegram: TelegramAPI, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    assert POSTGRES_URL
    from alembic import command

    from assistant.store.migrations.migrate import alembic_config

    command.downgrade(alembic_config(POSTGRES_URL), "base")  # empty: the replicas create the schema together
    return {
        **stack.env,
        "ASSISTANT_DATABASE_URL": POSTGRES_URL,
        "ASSISTANT_DATA_DIR": str(tmp_path_factory.mktemp("replicas")),  # the volume replicas share
        "ASSISTANT_RASA__MANAGED": "false",
        "ASSISTANT_VLLM__MANAGED": "false",
        "ASSISTANT_CHANNELS": '["rest", "telegram"]',
        "ASSISTANT_CHANNEL__TELEGRAM__API_URL": f"{telegram.url}/bot",
    }


@pytest.fixture(scope="module")
def replicas(replica_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Replica]]:
    logs = tmp_path_factory.mktemp("replica-logs")
    started: list[Replica] = []
    for index in range(2):
        port = free_port()
        log_path = logs / f"replica-{index}.log"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "wiring", "serve", "--port", str(port)],
                env={**replica_env, "ASSISTANT_PORT": str(port)},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        started.append(Replica(f"http://127.0.0.1:{port}", process, log_path))
    try:
        deadline = time.monotonic() + 120
        for replica in started:
            while True:
                if replica.process.poll() is not None:
                    pytest.fail(f"a replica exited while starting:\n{replica.log_path.read_text()[-3000:]}")
                try:
                    if httpx.get(f"{replica.url}/health", timeout=5).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"a replica did not become healthy:\n{replica.log_path.read_text()[-3000:]}")
                time.sleep(0.5)
        yield started
    finally:
        for replica in started:
            replica.process.terminate()
        for replica in started:
            try:
                replica.process.wait(30)
            except subprocess.TimeoutExpired:
                replica.process.kill()


@pytest.fixture
async def db() -> AsyncIterator[Store]:
    assert POSTGRES_URL
    store = Store(POSTGRES_URL)
    yield store
    await store.aclose()


async def rows(store: Store, sql: str, **params: Any) -> list[dict[str, Any]]:
    return await store.transaction(lambda c: [dict(r) for r in c.execute(sa.text(sql), params).mappings()])


async def test_each_update_is_answered_once_whichever_replica_takes_it(
    replicas: list[Replica], telegram: TelegramAPI, db: Store
) -> None:
    telegram.script = [TOO_MANY_REQUESTS] * 4  # the first deliveries are throttled: retries go back to the outbox
    chats = random.sample(range(10**6, 10**7), 6)
    payloads = [update(text, chat) for text, chat in zip(["hi", "tell me a joke"] * 3, chats, strict=True)]
    for index, payload in enumerate(payloads):
        first, second = replicas[index % 2], replicas[1 - index % 2]
        assert first.post(payload).status_code == 200
        again = second.post(payload)  # Telegram retries the same update; the balancer picks the other replica
        assert again.status_code == 200 and again.json()["duplicate"]

    telegram.wait_for(lambda: all(telegram.sent_to(chat) for chat in chats), 120, "a reply in every chat")
    await asyncio.sleep(4)  # a second delivery of any of them would arrive by now
    assert [len(telegram.sent_to(chat)) for chat in chats] == [1] * len(chats)
    assert telegram.script == []  # the throttled attempts were made, and retried
    for payload, chat in zip(payloads, chats, strict=True):
        (user,) = await rows(db, "SELECT id FROM messages WHERE external_id = :e", e=f"telegram:{payload['update_id']}")
        (bot,) = await rows(db, "SELECT id, text FROM messages WHERE reply_to_id = :id", id=user["id"])
        assert telegram.sent_to(chat) == [bot["text"]]
        (delivery,) = await rows(db, "SELECT status, attempts FROM outbox WHERE message_id = :id", id=bot["id"])
        assert delivery["status"] == "delivered"
    retried = await rows(db, "SELECT count(*) AS n FROM outbox WHERE attempts > 1")
    assert retried[0]["n"] >= 1


async def test_a_conversation_spread_over_both_replicas_stays_one_in_order(
    replicas: list[Replica], telegram: TelegramAPI, db: Store
) -> None:
    chat = random.randint(10**7, 10**8)
    first_two = [update("hi", chat), update("what are your opening hours", chat)]
    threads = [  # first contact on both replicas at the same moment: still one conversation
        threading.Thread(target=replica.post, args=(payload,))
        for replica, payload in zip(replicas, first_two, strict=True)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    telegram.wait_for(lambda: len(telegram.sent_to(chat)) == 2, 60, "both first replies")
    texts = ["thanks", "bye", "hello again", "tell me a joke"]
    for index, text in enumerate(texts):
        assert replicas[index % 2].post(update(text, chat)).status_code == 200
        telegram.wait_for(lambda n=index + 3: len(telegram.sent_to(chat)) == n, 60, f"the reply to {text!r}")

    (conversation,) = await rows(
        db, "SELECT id FROM conversations WHERE channel = 'telegram' AND sender_id = :s", s=str(chat)
    )
    messages = await rows(
        db,
        "SELECT id, role, text, reply_to_id FROM messages WHERE conversation_id = :c ORDER BY id",
        c=conversation["id"],
    )
    users = [m for m in messages if m["role"] == "user"]
    bots = [m for m in messages if m["role"] == "bot"]
    assert sorted(m["text"] for m in users[:2]) == sorted(["hi", "what are your opening hours"])
    assert [m["text"] for m in users[2:]] == texts
    assert len(bots) == 6 and sorted(b["reply_to_id"] for b in bots) == [u["id"] for u in users]
    for bot in bots:  # each reply comes after its message
        assert bot["id"] > bot["reply_to_id"]
    assert sorted(telegram.sent_to(chat)) == sorted(b["text"] for b in bots)


async def test_retrains_on_two_hosts_refuse_each_other(replica_env: dict[str, str], db: Store) -> None:
    other = Store(POSTGRES_URL or "")  # a second connection pool: its own database sessions
    try:
        for _ in range(10):  # both try at the same moment: exactly one holds the lock
            holders = [locks.new_holder(), locks.new_holder()]

            async def attempt(store: Store, holder: str) -> str | None:
                try:
                    return await store.transaction(lambda c: locks.try_acquire(c, "retrain", holder))
                except Exception as exc:  # the loser of the insert race: the primary key refuses it
                    return type(exc).__name__

            results = await asyncio.gather(attempt(db, holders[0]), attempt(other, holders[1]))
            assert sum(result is None for result in results) == 1, results
            winner = holders[results.index(None)]
            await db.transaction(lambda c, w=winner: locks.release(c, "retrain", w))

        holder = locks.new_holder()  # a retrain running in this (live) process
        assert await db.transaction(lambda c: locks.try_acquire(c, "retrain", holder)) is None
        refused = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "wiring", "retrain"],
            env=replica_env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert refused.returncode != 0
        assert "another retrain is running" in refused.stdout + refused.stderr
        assert holder in refused.stdout.replace("\n", "") + refused.stderr.replace("\n", "")
        await db.transaction(lambda c: locks.release(c, "retrain", holder))
    finally:
        await other.aclose()
