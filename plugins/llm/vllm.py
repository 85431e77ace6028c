"""vLLM as a `ModelServer`: launched in its own environment with LoRA adapters loadable at run time
(``/v1/load_lora_adapter``, needs ``VLLM_ALLOW_RUNTIME_LORA_UPDATING``). Loading never disturbs requests in
flight, and an adapter is served by naming it in the request, so a switch needs no reroute."""

from __future__ import annotations

from pathlib import Path

import httpx

from assistant.config import Settings
from assistant.contracts import AssistantError, ModelVersion, Reroute, ServiceSpec
from assistant.infra.services import host_port, python_in
from plugins.llm.openai_server import OpenAIServer


class VLLMNotInstalled(AssistantError):
    pass


class AdapterError(AssistantError):
    pass


def vllm_service(settings: Settings) -> ServiceSpec:
    cfg = settings.vllm
    python = python_in(cfg.python_env)
    if not cfg.base_model or not Path(cfg.base_model).is_dir():
        raise VLLMNotInstalled(
            f"base model directory {cfg.base_model!r} not found: run scripts/setup.sh, or set "
            "ASSISTANT_VLLM__BASE_MODEL to a Hugging Face model directory"
        )
    host, port = host_port(cfg.url, 8000)
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(cfg.base_model),
        "--served-model-name", cfg.served_model_name,
        "--host", host, "--port", str(port),
        "--enable-lora", "--max-lora-rank", str(cfg.max_lora_rank), "--max-loras", str(cfg.max_loras),
        "--max-model-len", str(cfg.max_model_len),
        "--gpu-memory-utilization", str(cfg.gpu_memory_utilization),
    ]  # fmt: skip
    if cfg.api_key != "EMPTY":
        command += ["--api-key", cfg.api_key]
    command += cfg.extra_args
    return ServiceSpec(
        name="vllm",
        command=command,
        health_url=f"{cfg.url.rstrip('/')}/health",
        env={
            "VLLM_CPU_KVCACHE_SPACE": str(cfg.kv_cache_gib),
            "VLLM_ALLOW_RUNTIME_LORA_UPDATING": "True",
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "VLLM_NO_USAGE_STATS": "1",
            "DO_NOT_TRACK": "1",
        },
        cwd=settings.data_dir,
        startup_timeout_s=cfg.startup_timeout_s,
    )


class VLLMServer(OpenAIServer):
    """vLLM: launched by `assistant up` (unless ``vllm.managed`` is false) and serving adapters."""

    serves_versions = True

    def launch(self, model: Path | None) -> ServiceSpec | None:
        return vllm_service(self.settings) if self.settings.vllm.managed else None

    async def loaded(self) -> dict[str, str]:
        """Adapter name -> its directory, for the adapters vLLM serves now."""
        return {m["id"]: m.get("root", "") for m in await self._models() if m.get("parent")}

    async def serves(self, version: ModelVersion) -> bool:
        try:
            root = (await self.loaded()).get(version.version)
        except httpx.HTTPError:
            return False
        return root is not None and root in (str(version.path.resolve()), str(version.path))

    async def serve(self, version: ModelVersion | None, reroute: Reroute) -> None:
        """Load the adapter unless vLLM already serves it from the same files (None, the base model, is always
        served). A same-named adapter from other files (another registry on this server) is replaced."""
        if version is None:
            return
        path = str(version.path.resolve())
        loaded = await self.loaded()
        async with httpx.AsyncClient(timeout=300, headers=self.headers) as http:
            if version.version in loaded:
                if loaded[version.version] in (path, str(version.path)):
                    return
                await http.post(f"{self.url}/v1/unload_lora_adapter", json={"lora_name": version.version})
            response = await http.post(
                f"{self.url}/v1/load_lora_adapter", json={"lora_name": version.version, "lora_path": path}
            )
        if response.status_code != 200 and "already been loaded" not in response.text:
            raise AdapterError(
                f"vLLM refused adapter {version.version} from {path}: {response.status_code} {response.text}"
            )
