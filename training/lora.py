"""LLM retraining: runs ``training/lora_sft.py`` in the vLLM environment and follows its progress."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.contracts import AssistantError, Progress
from assistant.infra.services import python_in, run_tool

SCRIPT = Path(__file__).with_name("lora_sft.py")


class TrainingFailed(AssistantError):
    pass


@dataclass(frozen=True)
class TrainedAdapter:
    """What ``lora_sft.py`` reports: held-out loss/perplexity of base, active and candidate, speed, device; and
    the loss curve (one point per logged step)."""

    metrics: dict[str, Any]
    curve: list[dict[str, Any]]


def train_adapter(
    settings: Settings,
    train: Path,
    validation: Path,
    out: Path,
    active_adapter: str | None,
    epochs: int,
    on_progress: Progress,
) -> TrainedAdapter:
    """Train a LoRA adapter into ``out``."""
    cfg = settings.training
    if not settings.vllm.base_model:
        raise TrainingFailed("no base model configured (ASSISTANT_VLLM__BASE_MODEL); run scripts/setup.sh")
    job = {
        "base_model": settings.vllm.base_model,
        "train": str(train),
        "validation": str(validation),
        "out": str(out),
        "active_adapter": active_adapter,
        "epochs": epochs,
        "batch_size": cfg.llm_batch_size,
        "rank": min(cfg.llm_lora_rank, settings.vllm.max_lora_rank),
        "alpha": cfg.llm_lora_alpha,
        "learning_rate": cfg.llm_learning_rate,
        "max_length": cfg.llm_max_length,
        "precision": cfg.llm_precision,
        "gradient_checkpointing": cfg.llm_gradient_checkpointing,
        "packing": cfg.llm_packing,
        "quantization": cfg.llm_quantization,
    }
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    result: dict[str, Any] | None = None

    def follow(line: str) -> None:
        nonlocal result
        try:
            event = json.loads(line)
        except ValueError:
            return
        if not isinstance(event, dict):
            return
        if event.get("event") == "step":
            on_progress(event["step"], event["total"], f"loss {event['loss']:.3f}")
        elif event.get("event") == "done":
            result = event

    # the LoRA trainer needs torch and peft: the vLLM environment has them
    finished = run_tool([str(python_in(settings.vllm.python_env)), str(SCRIPT), json.dumps(job)], env, follow)
    if finished.returncode != 0 or result is None:
        raise TrainingFailed(
            f"LoRA training failed (exit {finished.returncode}); last output:\n" + "\n".join(finished.last_lines)
        )
    return TrainedAdapter(result["metrics"], result["curve"])
