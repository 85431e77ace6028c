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
from assistant.contracts import BackendUnavailable, ChatMessage, Generation, Health, ServingState, Usage

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
        self.headers = {"Authorization": f"Bearer {settings.vllm.api_key}"} if settings.vllm.api_key != "EMPTY" else {}
        limits = httpx.Limits(max_connections=64)
        self.http = httpx.AsyncClient(timeout=timeout, limits=limits, headers=self.headers)
        self._chats: dict[str, ChatOpenAI] = {}
        self.server_url = settings.vllm.url.rstrip("/")
        self._tokenize_missing = False
        self.default_generation = settings.llm.generation()

    async def aclose(self) -> None:
        await self.http.aclose()

    def chat_model(self, model: str, generation: Generation) -> ChatOpenAI:
        """One ChatOpenAI per model name and sampling settings, all sharing one connection pool."""
        key = f"{model}\0{generation!r}"
        if key not in self._chats:
            extra: dict[str, object] = {}
            if generation.repetition_penalty != 1.0:
                extra["repetition_penalty"] = generation.repetition_penalty  # vLLM's sampling parameter
            self._chats[key] = ChatOpenAI(
                model=model,
                base_url=self.base_url,
                api_key=self.settings.vllm.api_key,
                temperature=generation.temperature,
                top_p=generation.top_p,
                frequency_penalty=generation.frequency_penalty,
                max_tokens=generation.max_tokens,
                stop=list(generation.stop) or None,
                seed=generation.seed,
                extra_body=extra or None,
                timeout=self.settings.llm.timeout_s,
                max_retries=0,  # a retry would double the user's wait; the pipeline falls back instead
                streaming=True,
                stream_usage=True,
                http_async_client=self.http,
            )
        return self._chats[key]

    async def stream(
        self, messages: list[ChatMessage], model: str, usage: Usage, generation: Generation | None = None
    ) -> AsyncIterator[str]:
        lc_messages = [_LC_TYPES[m.role](content=m.content) for m in messages]
        chat = self.chat_model(model, generation or self.default_generation)
        try:
            async for chunk in chat.astream(lc_messages):
                if chunk.content:
                    yield str(chunk.content)
                if chunk.usage_metadata:
                    usage.prompt_tokens = chunk.usage_metadata["input_tokens"]
                    usage.completion_tokens = chunk.usage_metadata["output_tokens"]
        except (openai.APIError, httpx.HTTPError, TimeoutError) as exc:
            raise BackendUnavailable(f"LLM at {self.base_url} ({model}): {exc!r}") from exc

    async def count_tokens(self, messages: list[ChatMessage], model: str) -> int | None:
        """The prompt's tokens by the served model's tokenizer and chat template (vLLM's ``/tokenize``);
        None from servers without it (then the caller estimates)."""
        if self._tokenize_missing:
            return None
        body = {
            "model": model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "add_generation_prompt": True,
        }
        try:
            response = await self.http.post(self.server_url + "/tokenize", json=body, headers=self.headers, timeout=5)
        except httpx.HTTPError:
            return None
        if response.status_code == 404:
            self._tokenize_missing = True
            return None
        if response.status_code != 200:
            return None
        return int(response.json()["count"])

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
