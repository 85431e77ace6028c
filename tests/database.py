"""The databases the stack tests run on: a SQLite file by default, or, with
``ASSISTANT_TEST_STACK_DATABASE=postgres``, a fresh database on the PostgreSQL server named by
``ASSISTANT_TEST_POSTGRES_URL`` (`make test` runs the suite both ways). Tests read and write them with
plain SQL through ``TestDatabase`` (``?`` placeholders on both), the way an operator would."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import asyncpg

T = TypeVar("T")
STACK_DATABASE = os.environ.get("ASSISTANT_TEST_STACK_DATABASE", "sqlite")
if STACK_DATABASE not in ("sqlite", "postgres"):
    raise SystemExit(f"ASSISTANT_TEST_STACK_DATABASE is sqlite or postgres, not {STACK_DATABASE!r}")


BOT_REPLIES = (
    "SELECT m.* FROM messages m JOIN conversations c ON c.id = m.conversation_id "
    "WHERE c.sender_id = ? AND m.role = 'bot' ORDER BY m.id"
)
Rows = Callable[..., list[dict[str, Any]]]


def last_turn(rows: Rows, sender: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The last (user row, bot row) of a sender's conversation, read with ``rows(sql, *params)``."""
    bot = rows(BOT_REPLIES, sender)[-1]
    return rows("SELECT * FROM messages WHERE id = ?", bot["reply_to_id"])[0], bot


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine from sync code, also when the calling thread already runs an event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    result: list[T] = []
    thread = threading.Thread(target=lambda: result.append(asyncio.run(coroutine)))
    thread.start()
    thread.join()
    return result[0]


class TestDatabase:
    __test__ = False  # not a test class

    def __init__(self, url: str) -> None:
        self.url = url

    @classmethod
    def for_tests(cls, name: str, sqlite_file: Path) -> TestDatabase:
        """The database a stack (or its own app) named ``name`` runs on, empty."""
        if STACK_DATABASE == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                Path(f"{sqlite_file}{suffix}").unlink(missing_ok=True)
            return cls(f"sqlite+aiosqlite:///{sqlite_file}")
        server = os.environ.get("ASSISTANT_TEST_POSTGRES_URL")
        if not server:
            raise SystemExit("ASSISTANT_TEST_STACK_DATABASE=postgres needs ASSISTANT_TEST_POSTGRES_URL")
        maintenance = _dsn(server).rsplit("/", 1)[0] + "/postgres"

        async def create() -> None:
            conn = await asyncpg.connect(maintenance)
            try:
                await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                await conn.execute(f'CREATE DATABASE "{name}"')
            finally:
                await conn.close()

        _run(create())
        return cls(server.rsplit("/", 1)[0] + f"/{name}")

    @property
    def is_sqlite(self) -> bool:
        return self.url.startswith("sqlite")

    def rows(self, sql: str, *params: Any) -> list[dict[str, Any]]:
        if self.is_sqlite:
            with sqlite3.connect(self.url.split(":///", 1)[1]) as db:
                db.row_factory = sqlite3.Row
                return [dict(row) for row in db.execute(sql, params)]

        async def fetch() -> list[dict[str, Any]]:
            conn = await asyncpg.connect(_dsn(self.url))
            try:
                return [dict(record) for record in await conn.fetch(_numbered(sql), *params)]
            finally:
                await conn.close()

        return _run(fetch())

    def execute(self, sql: str, *params: Any) -> None:
        self.rows(sql, *params)


def _dsn(url: str) -> str:
    return re.sub(r"^postgresql\+asyncpg://", "postgresql://", url)


def _numbered(sql: str) -> str:
    """SQLite's ``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    count = 0

    def next_number(_match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return f"${count}"

    return re.sub(r"\?", next_number, sql)
