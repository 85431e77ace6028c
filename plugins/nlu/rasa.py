"""NLU backend: a Rasa server's ``/model/parse``."""

from __future__ import annotations

import asyncio
import time
from pathlib import PurePath

from assistant.config import Settings
from assistant.protocols import BackendUnavailable, Health, IntentScore, ParseResult
from nlu.rasa_client import RasaClient, RasaError

MODEL_REFRESH_S = 10.0


class RasaNLU:
    def __init__(self, settings: Settings) -> None:
        self.client = RasaClient(settings.rasa.url, settings.rasa.timeout_s, settings.rasa.token)
        self._model: str | None = None
        self._model_checked = 0.0
        self._refresh: asyncio.Task[None] | None = None

    async def aclose(self) -> None:
        await self.client.aclose()

    async def parse(self, text: str) -> ParseResult:
        try:
            data = await self.client.parse(text)
        except TimeoutError as exc:
            raise BackendUnavailable(f"Rasa at {self.client.url} timed out") from exc
        except RasaError as exc:
            raise BackendUnavailable(f"Rasa at {self.client.url}: {exc!r}") from exc
        self._maybe_refresh_model()
        intent = data.get("intent") or {}
        return ParseResult(
            intent=IntentScore(intent["name"], float(intent["confidence"])) if intent.get("name") else None,
            ranking=[IntentScore(s["name"], float(s["confidence"])) for s in data.get("intent_ranking", [])],
            entities=data.get("entities") or [],
            model=self._model,
        )

    def _maybe_refresh_model(self) -> None:
        """Keep the served model's name fresh (it changes on hot-swap) without a call per parse."""
        if time.monotonic() - self._model_checked < MODEL_REFRESH_S:
            return
        if self._refresh is None or self._refresh.done():
            self._model_checked = time.monotonic()
            self._refresh = asyncio.create_task(self._refresh_model())

    async def _refresh_model(self) -> None:
        try:
            model_file = (await self.client.status()).get("model_file")
        except RasaError:
            return
        self._model = PurePath(model_file).name if model_file else None

    async def current_model(self) -> str | None:
        await self._refresh_model()
        self._model_checked = time.monotonic()
        return self._model

    async def health(self) -> Health:
        try:
            version = await self.client.version()
            model = await self.current_model()
        except RasaError as exc:
            return Health(False, f"{self.client.url}: {exc!r}")
        return Health(model is not None, f"{version}, model {model}")
