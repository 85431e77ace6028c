"""Plugins written against earlier releases keep working: a channel whose router() takes no turn API (it used the
`get_pipeline` dependency) and an NLU backend built from settings alone (the shims in `compat`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from fastapi import APIRouter, Depends

from assistant.config import Settings
from assistant.contracts import CHANNELS, IncomingMessage, ServingState
from assistant.infra import entry_points
from assistant.turn.pipeline import TurnPipeline
from compat.old_plugins import get_pipeline
from tests.unit.apps import start
from tests.unit.fakes import FakeNLU


class OldChannel:
    """A channel plugin as the README described it before: ``router()`` and the pipeline as a dependency."""

    name = "old"

    def __init__(self, settings: Settings) -> None:
        pass

    def router(self) -> APIRouter:
        router = APIRouter()

        @router.post("/old")
        async def old(body: dict[str, str], pipeline: Annotated[TurnPipeline, Depends(get_pipeline)]) -> dict[str, Any]:
            reply = await pipeline.respond(IncomingMessage(self.name, body["sender"], body["text"]))
            return {"text": reply.text}

        return router


class OldNLU(FakeNLU):
    def __init__(self, settings: Settings) -> None:  # no serving state: it parses where it always did
        super().__init__(settings, ServingState(llm_model="base"))


async def test_old_plugins_still_work_with_a_deprecation_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ASSISTANT_CONFIG", str(tmp_path / "none.yml"))
    real_available, real_load = entry_points.available, entry_points.load
    monkeypatch.setattr(
        entry_points,
        "available",
        lambda group: {**real_available(group), **({"old": None} if group == CHANNELS else {})},
    )
    monkeypatch.setattr(
        entry_points, "load", lambda group, name: OldChannel if name == "old" else real_load(group, name)
    )
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path / 'old.db'}", channels=["old"])
    with pytest.warns(DeprecationWarning) as warned:
        app = start(settings, nlu=OldNLU)
        async with app as running:
            response = await running.http.post("/old", json={"sender": "s", "text": "hello"})
    assert response.status_code == 200 and "Hello" in response.json()["text"]
    said = " ".join(str(w.message) for w in warned)
    assert "router() takes no turn API" in said and "OldNLU takes only settings" in said
