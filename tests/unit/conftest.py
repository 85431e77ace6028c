"""Fixtures every unit test module may use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from assistant.store.migrations.migrate import upgrade
from tests.unit.apps import App, settings_for, start


@pytest.fixture
async def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path)) as app:
        yield app


@pytest.fixture
async def app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[App]:
    """The app with a small body and metadata limit (a module may define its own ``app``)."""
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    async with start(settings_for(tmp_path, limits={"max_body_bytes": 65536, "max_metadata_bytes": 1000})) as app:
        yield app


@pytest.fixture
def db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated SQLite file that the CLI's commands use (through the environment)."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'assistant.db'}"
    monkeypatch.setenv("ASSISTANT_DATABASE_URL", url)
    monkeypatch.setenv("ASSISTANT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    upgrade(url)
    return url
