"""The Prometheus metrics (assistant/infra/prometheus.py) count what the turns do."""

from __future__ import annotations

from tests.unit.apps import (
    App,
)


async def test_metrics_count_turns(running: App) -> None:
    await running.say("kim", "hello")
    text = (await running.http.get("/metrics")).text
    assert 'assistant_turns_total{reason="confident",route="intent"}' in text
