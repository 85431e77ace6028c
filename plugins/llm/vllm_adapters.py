"""LoRA adapters in a running vLLM server: which are loaded, and loading one (``/v1/load_lora_adapter``,
needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``). Loading never disturbs requests in flight."""

from __future__ import annotations

import httpx

from assistant.config import Settings


class AdapterError(RuntimeError):
    pass


class VLLMAdapters:
    def __init__(self, settings: Settings) -> None:
        self.url = settings.vllm.url.rstrip("/")
        self.headers = {"Authorization": f"Bearer {settings.vllm.api_key}"}

    async def loaded(self) -> dict[str, str]:
        """Adapter name -> its directory, for the adapters vLLM serves now."""
        async with httpx.AsyncClient(timeout=10, headers=self.headers) as http:
            response = await http.get(f"{self.url}/v1/models")
            response.raise_for_status()
        return {m["id"]: m.get("root", "") for m in response.json()["data"] if m.get("parent")}

    async def load(self, name: str, path: str) -> None:
        """Load the adapter unless vLLM already serves it under this name."""
        if name in await self.loaded():
            return
        async with httpx.AsyncClient(timeout=300, headers=self.headers) as http:
            response = await http.post(f"{self.url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": path})
        if response.status_code != 200 and "already been loaded" not in response.text:
            raise AdapterError(f"vLLM refused adapter {name} from {path}: {response.status_code} {response.text}")
