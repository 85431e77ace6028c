"""Runs the vLLM OpenAI-compatible server in its own environment, with LoRA adapters loadable at run time."""

from __future__ import annotations

import sys
from pathlib import Path

from assistant.config import Settings
from assistant.services import ServiceSpec, host_port


class VLLMNotInstalled(RuntimeError):
    pass


def vllm_service(settings: Settings) -> ServiceSpec:
    cfg = settings.vllm
    python = cfg.python_env / "bin" / "python" if cfg.python_env else Path(sys.executable)
    if not python.exists():
        raise VLLMNotInstalled(f"no Python at {python}: run scripts/setup.sh to build the vLLM environment")
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
