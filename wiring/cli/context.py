"""What every command shares: settings and the store, built once per command, and errors as sentences.

A known error (any `AssistantError`) ends the command with its sentence and exit code 1; anything else is a
bug and keeps its traceback. ``assistant --debug`` (or ``ASSISTANT_DEBUG=1``) shows the traceback for both.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

import typer

from assistant.config import read_settings
from assistant.contracts import AssistantError
from assistant.store import Store
from wiring.cli.terminal import fail

P = ParamSpec("P")
T = TypeVar("T")
DEBUG = {"on": os.environ.get("ASSISTANT_DEBUG", "") not in ("", "0", "false")}


def sentences(function: Callable[P, T]) -> Callable[P, T]:
    """Wrap a command: known errors become a sentence and exit 1 (a traceback too with --debug)."""

    @functools.wraps(function)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return function(*args, **kwargs)
        except AssistantError as exc:
            if DEBUG["on"]:
                raise
            raise fail(str(exc)) from exc

    return wrapper


def command(group: typer.Typer, name: str | None = None) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """``@command(group)``: register a command on ``group``, with `sentences`."""

    def register(function: Callable[P, T]) -> Callable[P, T]:
        wrapped = sentences(function)
        group.command(name)(wrapped)
        return wrapped

    return register


class Context:
    """Settings read once; the store opened (schema migrated) once, on first use, for the whole command."""

    def __init__(self) -> None:
        self.settings = read_settings()
        self._migrated = False

    def migrate(self) -> None:
        if not self._migrated:
            from assistant.store.migrations.migrate import upgrade

            upgrade(self.settings.db_url)
            self._migrated = True

    def run(self, work: Callable[[Store], Awaitable[T]]) -> T:
        """Run ``work(store)`` on an event loop with the configured store (closed after)."""
        self.migrate()

        async def main() -> T:
            store = Store(self.settings.db_url, self.settings.db)
            try:
                return await work(store)
            finally:
                await store.aclose()

        return asyncio.run(main())


def transaction(context: Context, work: Callable[[Any], T]) -> T:
    """One transaction on the configured store."""

    async def run(store: Store) -> T:
        return await store.transaction(work)

    return context.run(run)
