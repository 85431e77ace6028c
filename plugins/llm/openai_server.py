"""A plain OpenAI-compatible chat server as a `ModelServer` (one fixed model, no adapters)."""

from __future__ import annotations

from pathlib import Path

import httpx

from assistant.config import Settings
from assistant.contracts import Health, ModelKind, ModelVersion, NotSupported, Reroute, ServiceSpec


class OpenAIServer:
    """Any OpenAI-compatible chat server that runs elsewhere and serves one model: `assistant up` starts
    nothing, and it cannot serve adapters (so `assistant retrain` leaves the LLM alone)."""

    kind = ModelKind.LLM
    serves_versions = False

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = settings.vllm.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {settings.vllm.api_key}"}

    def launch(self, model: Path | None) -> ServiceSpec | None:
        return None

    async def _models(self) -> list[dict[str, str]]:
        async with httpx.AsyncClient(timeout=10, headers=self.headers) as http:
            response = await http.get(f"{self.url}/v1/models")
            response.raise_for_status()
        return list(response.json()["data"])

    async def health(self) -> Health:
        try:
            models = await self._models()
        except httpx.HTTPError as exc:
            return Health(False, f"{self.url}: {exc!r}")
        return Health(True, "models: " + ", ".join(m["id"] for m in models))

    async def serves(self, version: ModelVersion) -> bool:
        return False

    async def serve(self, version: ModelVersion | None, reroute: Reroute) -> None:
        if version is not None:
            raise NotSupported(
                f"the LLM server at {self.url} (llm.server: {self.settings.llm.server}) serves one fixed model and "
                f"cannot load the LoRA adapter {version.version}"
            )

    async def aclose(self) -> None:
        return None
