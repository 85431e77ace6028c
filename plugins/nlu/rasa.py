"""NLU backend: a Rasa server's ``/model/parse``."""

from __future__ import annotations

import asyncio
import time
from pathlib import PurePath

from assistant.config import Settings
from assistant.protocols import BackendUnavailable, Health, IntentScore, ParseResult
from nlu.rasa_client import RasaClient, RasaError

MODEL_REFRESH_S = 10.0
RETIRED_CLIENT_GRACE_S = 60.0


class RasaNLU:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = self._client(settings.rasa.url)
        self._model: str | None = None
        self._model_checked = 0.0
        self._refresh: asyncio.Task[None] | None = None
        self._retired: list[RasaClient] = []
        self._closing: asyncio.Future[None] | None = None

    def _client(self, url: str) -> RasaClient:
        return RasaClient(url, self.settings.rasa.timeout_s, self.settings.rasa.token)

    def use_url(self, url: str | None) -> None:
        url = (url or self.settings.rasa.url).rstrip("/")
        if url == self.client.url:
            return
        # Parses in flight finish on the old client (closed a minute later); new parses use the new server.
        old, self.client = self.client, self._client(url)
        self._retired.append(old)
        asyncio.get_running_loop().call_later(RETIRED_CLIENT_GRACE_S, self._close_retired, old)
        self._model_checked = 0.0  # learn the new server's model on the next parse

    def _close_retired(self, client: RasaClient) -> None:
        if client in self._retired:
            self._retired.remove(client)
            self._closing = asyncio.ensure_future(client.aclose())

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in [self.client, *self._retired]))

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
