"""Keeps what the app serves in step with the database, so that a promotion, an `activate` or a rollback
made by another process (the CLI, another replica) reaches every app within a second or two:

* the LLM model name follows the registry's active adapter (the base model when there is none);
* the Rasa server used for parsing follows the ``nlu.url`` runtime setting (set while the main server
  loads a new model, see ``training.publish``).

The switch is one attribute assignment: a turn reads the name once when its LLM call starts, so calls in
flight finish on the adapter they began with while new ones use the new name. Before switching, the
adapter is (re)loaded into vLLM if vLLM does not serve it (after a vLLM restart, for instance).
"""

from __future__ import annotations

import asyncio
import logging
import time

from assistant import background
from assistant.config import Settings
from assistant.pipeline import TurnPipeline
from assistant.store import registry, runtime
from plugins.llm.vllm_adapters import AdapterError, VLLMAdapters

log = logging.getLogger(__name__)
POLL_S = 1.0
ADAPTER_CHECK_S = 10.0  # how often vLLM is asked whether it still serves the active adapter (a restart loses it)


class ActiveModelWatcher:
    def __init__(self, settings: Settings, pipeline: TurnPipeline) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.adapters = VLLMAdapters(settings)
        self.default = settings.llm.adapter or settings.vllm.served_model_name
        self.nlu_url = settings.rasa.url
        self._adapter_checked = 0.0
        self._task: asyncio.Task[None] | None = None

    async def sync_once(self) -> None:
        record, overrides = await self.pipeline.store.transaction(
            lambda conn: (registry.active(conn, "llm"), runtime.read_all(conn))
        )
        nlu_url = (overrides.get(runtime.NLU_URL) or {}).get("url") or self.settings.rasa.url
        if nlu_url != self.nlu_url:
            log.info("parsing with %s (was %s)", nlu_url, self.nlu_url)
            self.pipeline.nlu.use_url(nlu_url)
            self.nlu_url = nlu_url
        wanted = record.version if record else self.default
        due = time.monotonic() - self._adapter_checked > ADAPTER_CHECK_S
        if record and record.path and (wanted != self.pipeline.active_model or due):
            self._adapter_checked = time.monotonic()
            try:
                await self.adapters.load(record.version, record.path)
            except Exception as exc:  # vLLM down or refusing: keep serving what works, try again later
                if not isinstance(exc, AdapterError):
                    exc = AdapterError(repr(exc))
                log.warning("cannot serve adapter %s yet: %s", record.version, exc)
                return
        if wanted != self.pipeline.active_model:
            log.info("LLM model: %s -> %s", self.pipeline.active_model, wanted)
            self.pipeline.active_model = wanted

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
