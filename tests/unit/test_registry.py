"""The model registry (assistant/store/registry.py) on SQLite (and PostgreSQL when configured)."""

from __future__ import annotations

import pytest

from assistant.store import Store, registry

pytestmark = pytest.mark.database  # on SQLite, and on PostgreSQL when ASSISTANT_TEST_POSTGRES_URL is set


async def test_versions_activate_and_roll_back_along_parents(store_url: str) -> None:
    store = Store(store_url)
    try:
        first = await store.transaction(lambda c: registry.register(c, "nlu", path="/m/1.tar.gz"))
        assert (first.version, first.status) == ("nlu-0001", registry.TRAINING)
        await store.transaction(lambda c: registry.activate(c, "nlu-0001"))
        second = await store.transaction(lambda c: registry.register(c, "nlu", parent="nlu-0001"))
        adapter = await store.transaction(lambda c: registry.register(c, "llm"))
        assert (second.version, adapter.version) == ("nlu-0002", "llm-0001")

        replaced = await store.transaction(lambda c: registry.activate(c, "nlu-0002"))
        assert replaced is not None and replaced.version == "nlu-0001"
        statuses = {r.version: r.status for r in await store.transaction(registry.all_versions)}
        assert statuses == {"nlu-0001": "retired", "nlu-0002": "active", "llm-0001": "training"}

        current, target = await store.transaction(lambda c: registry.rollback_target(c, "nlu"))
        assert current and target and (current.version, target.version) == ("nlu-0002", "nlu-0001")
        await store.transaction(lambda c: registry.activate(c, target.version))
        current, target = await store.transaction(lambda c: registry.rollback_target(c, "nlu"))
        assert current and current.version == "nlu-0001" and target is None  # the first has no parent

        # a retrain that died left llm-0001 in "training": the next one marks it failed
        assert await store.transaction(registry.fail_unfinished) == ["llm-0001"]
        assert (await store.transaction(lambda c: registry.get(c, "llm-0001"))).status == "failed"
        with pytest.raises(registry.UnknownVersion, match="nlu-0009"):
            await store.transaction(lambda c: registry.get(c, "nlu-0009"))
    finally:
        await store.aclose()
