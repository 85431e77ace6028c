"""`assistant models` (wiring/cli/models.py) on a real SQLite store: a version that failed its gate is refused
without --force."""

from __future__ import annotations

import asyncio

from typer.testing import CliRunner

from assistant.contracts import ModelKind
from assistant.store import Store, registry
from wiring.cli import app


async def rejected_version(db: str) -> None:
    store = Store(db)
    try:
        gate = {"passed": False, "reason": "failed the gate: smalltalk: looping", "failed": ["smalltalk: looping"]}
        await store.transaction(
            lambda c: registry.register(
                c, ModelKind.LLM, status=registry.REJECTED, metrics={"gate": gate}, error=gate["reason"]
            )
        )
    finally:
        await store.aclose()


def test_activate_refuses_a_version_that_failed_its_gate(db: str) -> None:
    asyncio.run(rejected_version(db))
    result = CliRunner().invoke(app, ["models", "activate", "llm-0001"])
    assert result.exit_code == 1
    said = " ".join(result.output.split())
    assert "llm-0001 failed its evaluation: failed the gate: smalltalk: looping. Use --force" in said
