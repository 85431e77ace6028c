"""Forgetting a person, and retention: the log's rows (`assistant.store.purge`) and the files made from them
(training exports under ``data_dir/retrain``, report samples under ``data_dir/reports``).

A file record (a JSONL line: an SFT example) that holds a forgotten text is dropped; in other files (NLU
exports, reports) a line that is a forgotten text is dropped and longer forgotten texts quoted inside a line
are replaced by ``[forgotten]``. Short texts ("hi") are only matched whole, so the bot's own examples and
other people's words are left alone.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.infra.background import cancel
from assistant.store import Store
from assistant.store.purge import Erased, expire
from assistant.store.purge import forget as forget_rows

log = logging.getLogger(__name__)
TEXT_FILES = {".jsonl", ".json", ".yml", ".yaml", ".md", ".txt", ".csv", ".html"}
QUOTED_MIN_CHARS = 20  # a forgotten text this long is replaced wherever a file quotes it
FORGOTTEN = "[forgotten]"


@dataclass
class Forgotten:
    erased: Erased
    files: list[Path] = field(default_factory=list)


async def forget(store: Store, settings: Settings, sender_id: str, channel: str | None = None) -> Forgotten:
    """Delete everything stored from ``sender_id`` (on ``channel``, or every channel), then scrub the files."""
    erased = await store.transaction(lambda conn: forget_rows(conn, sender_id, channel))
    store.forget_conversation(sender_id, channel)
    files = await asyncio.to_thread(scrub_files, _folders(settings), erased.texts)
    return Forgotten(erased, files)


def _folders(settings: Settings) -> list[Path]:
    return [settings.data_dir / "retrain", settings.reports_dir]


def scrub_files(folders: list[Path], texts: list[str]) -> list[Path]:
    """Remove ``texts`` from the text files under ``folders``; returns the files changed."""
    whole = {" ".join(t.split()) for t in texts if t.strip()}
    quoted = sorted((t for t in whole if len(t) >= QUOTED_MIN_CHARS), key=len, reverse=True)
    changed = []
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in TEXT_FILES):
            try:
                original = path.read_text()
            except (OSError, UnicodeDecodeError):
                continue
            scrubbed = _scrub(original, path.suffix == ".jsonl", whole, quoted)
            if scrubbed != original:
                path.write_text(scrubbed)
                changed.append(path)
    return changed


def _scrub(content: str, records: bool, whole: set[str], quoted: list[str]) -> str:
    kept = []
    for line in content.splitlines(keepends=True):
        if records and _record_quotes(line, whole, quoted):
            continue
        plain = " ".join(line.strip().removeprefix("- ").strip().strip("\"'").split())
        if plain and plain in whole:
            continue
        for text in quoted:
            if text in line:
                line = line.replace(text, FORGOTTEN)
        kept.append(line)
    return "".join(kept)


def _record_quotes(line: str, whole: set[str], quoted: list[str]) -> bool:
    try:
        record = json.loads(line)
    except ValueError:
        return False
    return any(" ".join(s.split()) in whole or any(t in s for t in quoted) for s in _strings(record))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


class RetentionWorker:
    """Deletes turns older than ``retention_days`` (and scrubs the files quoting them), every
    ``retention_check_s``; off when ``retention_days`` is not set."""

    def __init__(self, settings: Settings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.settings.retention_days is not None:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await cancel(self._task)

    async def run_once(self) -> Erased:
        assert self.settings.retention_days is not None
        before = datetime.now(UTC) - timedelta(days=self.settings.retention_days)
        erased = await self.store.transaction(lambda conn: expire(conn, before))
        if erased.messages:
            await asyncio.to_thread(scrub_files, _folders(self.settings), erased.texts)
            log.info("retention: deleted %d messages older than %s", erased.messages, before.isoformat())
        return erased

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # a failed round is retried at the next; the app goes on
                log.exception("retention failed")
            await asyncio.sleep(self.settings.retention_check_s)
