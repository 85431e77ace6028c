"""LLM backend: any OpenAI-compatible chat server (vLLM here), through LangChain's ChatOpenAI.

The model is chosen per request, so a LoRA adapter loaded into vLLM is used by naming it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import openai
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

from assistant.config import Settings
from assistant.contracts import BackendUnavailable, ChatMessage, Health, ServingState, Usage

_LC_TYPES: dict[str, type[BaseMessage]] = {
    "system": SystemMessage,
    "user": HumanMessage,
    "assistant": AIMessage,
}


class OpenAIChatLLM:
    def __init__(self, settings: Settings, serving: ServingState | None = None) -> None:
        self.settings = settings
        self.base_url = settings.vllm.url.rstrip("/") + "/v1"
        timeout = httpx.Timeout(settings.llm.timeout_s, connect=2.0)
        self.http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=64))
        self._chats: dict[str, ChatOpenAI] = {}

    async def aclose(self) -> None:
        await self.http.aclose()

    def chat_model(self, model: str) -> ChatOpenAI:
        """One ChatOpenAI per model name, all sharing one connection pool."""
        if model not in self._chats:
            llm = self.settings.llm
            self._chats[model] = ChatOpenAI(
                model=model,
                base_url=self.base_url,
                api_key=self.settings.vllm.api_key,
                temperature=llm.temperature,
                max_tokens=llm.max_tokens,
                timeout=llm.timeout_s,
                max_retries=0,  # a retry would double the user's wait; the pipeline falls back instead
                streaming=True,
                stream_usage=True,
                http_async_client=self.http,
            )
        return self._chats[model]

    async def stream(self, messages: list[ChatMessage], model: str, usage: Usage) -> AsyncIterator[str]:
        lc_messages = [_LC_TYPES[m.role](content=m.content) for m in messages]
        try:
            async for chunk in self.chat_model(model).astream(lc_messages):
                if chunk.content:
                    yield str(chunk.content)
                if chunk.usage_metadata:
                    usage.prompt_tokens = chunk.usage_metadata["input_tokens"]
                    usage.completion_tokens = chunk.usage_metadata["output_tokens"]
        except (openai.APIError, httpx.HTTPError, TimeoutError) as exc:
            raise BackendUnavailable(f"LLM at {self.base_url} ({model}): {exc!r}") from exc

    async def models(self) -> list[str]:
        response = await self.http.get(f"{self.base_url}/models", timeout=5)
        response.raise_for_status()
        return [m["id"] for m in response.json()["data"]]

    async def health(self) -> Health:
        try:
            names = await self.models()
        except httpx.HTTPError as exc:
            return Health(False, f"{self.base_url}: {exc!r}")
        return Health(True, "models: " + ", ".join(names))
