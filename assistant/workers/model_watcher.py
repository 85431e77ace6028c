"""Keeps what the app serves (its `ServingState`) in step with the database, so that a promotion, an
`activate` or a rollback made by another process (the CLI, another replica) reaches every app within a second
or two:

* the LLM model name follows the registry's active adapter (the base model when there is none);
* the NLU endpoint follows the ``nlu.url`` runtime setting (set while the main NLU server loads a new model).

The switch is one attribute assignment: a turn reads the name once when its LLM call starts, so calls in
flight finish on the adapter they began with while new ones use the new name. Before switching, the LLM server
is asked to serve the adapter if it does not (after a vLLM restart, for instance).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from assistant.config import Settings
from assistant.contracts import AssistantError, ModelKind, ModelServer, ModelVersion, ServingState
from assistant.infra import background
from assistant.store import Store, registry, runtime

log = logging.getLogger(__name__)
POLL_S = 1.0
ADAPTER_CHECK_S = 10.0  # how often the LLM server is asked whether it still serves the active adapter


async def _no_reroute(endpoint: str | None) -> None:
    """LLM versions are chosen per request: serving one never moves traffic."""


class ActiveModelWatcher:
    def __init__(self, settings: Settings, store: Store, serving: ServingState, llm_server: ModelServer) -> None:
        self.settings = settings
        self.store = store
        self.serving = serving
        self.llm_server = llm_server
        self._adapter_checked = 0.0
        self._task: asyncio.Task[None] | None = None

    async def sync_once(self) -> None:
        stale_s = self.settings.training.lock_stale_after_s
        record, endpoint = await self.store.transaction(
            lambda conn: (registry.active(conn, ModelKind.LLM), runtime.nlu_endpoint(conn, stale_s))
        )
        if endpoint != self.serving.nlu_endpoint:
            log.info("parsing with %s (was %s)", endpoint or "the configured NLU server", self.serving.nlu_endpoint)
            self.serving.nlu_endpoint = endpoint
        wanted = record.version if record else self.settings.default_llm_model
        due = time.monotonic() - self._adapter_checked > ADAPTER_CHECK_S
        if record and record.path and (wanted != self.serving.llm_model or due):
            self._adapter_checked = time.monotonic()
            try:
                await self.llm_server.serve(ModelVersion(record.version, Path(record.path)), _no_reroute)
            except Exception as exc:  # server down or refusing: keep serving what works, try again later
                reason = str(exc) if isinstance(exc, AssistantError) else repr(exc)
                log.warning("cannot serve adapter %s yet: %s", record.version, reason)
                return
        if wanted != self.serving.llm_model:
            log.info("LLM model: %s -> %s", self.serving.llm_model, wanted)
            self.serving.llm_model = wanted

    async def _loop(self) -> None:
        while True:
            try:
                await self.sync_once()
            except Exception:
                log.exception("could not read the active LLM adapter from the registry")
            await asyncio.sleep(POLL_S)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        await background.cancel(self._task)
