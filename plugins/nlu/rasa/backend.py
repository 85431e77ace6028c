"""NLU backend: a Rasa server's ``/model/parse``. It parses with the server ``ServingState.nlu_endpoint``
names (a stand-in while the main server loads a new model), else the configured one."""

from __future__ import annotations

import asyncio
import time

from assistant.config import Settings
from assistant.contracts import BackendUnavailable, Health, ParseResult, ServingState
from plugins.nlu.rasa.client import RasaClient, RasaError, model_name, parse_result

MODEL_REFRESH_S = 10.0
RETIRED_CLIENT_GRACE_S = 60.0


class RasaNLU:
    def __init__(self, settings: Settings, serving: ServingState | None = None) -> None:
        self.settings = settings
        self.serving = serving or ServingState(llm_model=settings.default_llm_model)
        self.client = self._client(settings.rasa.url)
        self._model: str | None = None
        self._model_checked = 0.0
        self._refresh: asyncio.Task[None] | None = None
        self._retired: set[RasaClient] = set()
        self._closing: set[asyncio.Task[None]] = set()  # referenced until done, so none is collected midway

    def _client(self, url: str) -> RasaClient:
        return RasaClient(url, self.settings.rasa.timeout_s, self.settings.rasa.token)

    def _current(self) -> RasaClient:
        """The client for the server that should parse now; switching keeps the old one open a while, so parses
        in flight finish on it."""
        url = (self.serving.nlu_endpoint or self.settings.rasa.url).rstrip("/")
        if url != self.client.url:
            old, self.client = self.client, self._client(url)
            self._retired.add(old)
            asyncio.get_running_loop().call_later(RETIRED_CLIENT_GRACE_S, self._close_retired, old)
            self._model_checked = 0.0  # learn the new server's model on the next parse
        return self.client

    def _close_retired(self, client: RasaClient) -> None:
        if client in self._retired:
            self._retired.discard(client)
            task = asyncio.ensure_future(client.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        await asyncio.gather(*(client.aclose() for client in [self.client, *self._retired]))

    async def parse(self, text: str) -> ParseResult:
        client = self._current()
        try:
            data = await client.parse(text)
        except TimeoutError as exc:
            raise BackendUnavailable(f"Rasa at {client.url} timed out") from exc
        except RasaError as exc:
            raise BackendUnavailable(f"Rasa at {client.url}: {exc!r}") from exc
        if self._model is None:  # not known yet (the server was not up when the app started): learn it now
            await self._refresh_model()
            self._model_checked = time.monotonic()
        else:
            self._maybe_refresh_model()
        return parse_result(data, self._model)

    def _maybe_refresh_model(self) -> None:
        """Keep the served model's name fresh (it changes on hot-swap) without a call per parse."""
        if time.monotonic() - self._model_checked < MODEL_REFRESH_S:
            return
        if self._refresh is None or self._refresh.done():
            self._model_checked = time.monotonic()
            self._refresh = asyncio.create_task(self._refresh_model())

    async def _refresh_model(self) -> None:
        try:
            self._model = model_name(await self.client.status())
        except RasaError:
            return

    async def health(self) -> Health:
        client = self._current()
        try:
            version = await client.version()
            await self._refresh_model()
            self._model_checked = time.monotonic()
        except RasaError as exc:
            return Health(False, f"{client.url}: {exc!r}")
        return Health(self._model is not None, f"{version}, model {self._model}")
