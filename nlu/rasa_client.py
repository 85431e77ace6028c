"""A small async client for the Rasa server's HTTP API (``rasa run --enable-api``)."""

from __future__ import annotations

from typing import Any

import httpx


class RasaClient:
    def __init__(self, url: str, timeout_s: float = 5.0, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        params = {"token": token} if token else None
        # One pooled connection set for the app's lifetime: no TCP set-up on the hot path.
        self.http = httpx.AsyncClient(
            base_url=self.url,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 2.0)),
            params=params,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def parse(self, text: str) -> dict[str, Any]:
        response = await self.http.post("/model/parse", json={"text": text})
        response.raise_for_status()
        return response.json()

    async def version(self) -> str:
        """Rasa's greeting line ("Hello from Rasa: 3.6.21"); raises when the server is down."""
        response = await self.http.get("/")
        response.raise_for_status()
        return response.text.strip()

    async def status(self) -> dict[str, Any]:
        """The loaded model (``model_file``, ``model_id``) and running training jobs."""
        response = await self.http.get("/status")
        response.raise_for_status()
        return response.json()

    async def load_model(self, model_file: str) -> None:
        """Swap the served model in place (``PUT /model``); the server keeps answering meanwhile."""
        response = await self.http.put("/model", json={"model_file": model_file}, timeout=300)
        response.raise_for_status()
