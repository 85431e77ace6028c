"""LLM retraining: runs ``training/lora_sft.py`` in the vLLM environment and follows its progress."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.services import die_with_parent

SCRIPT = Path(__file__).with_name("lora_sft.py")
Progress = Callable[[int, int, str], None]


class TrainingFailed(RuntimeError):
    pass


def vllm_python(settings: Settings) -> str:
    env = settings.vllm.python_env
    python = env / "bin" / "python" if env else Path(sys.executable)
    if not python.exists():
        raise TrainingFailed(f"no Python at {python}: run scripts/setup.sh (it builds the vLLM environment)")
    return str(python)


def train_adapter(
    settings: Settings,
    train: Path,
    validation: Path,
    out: Path,
    active_adapter: str | None,
    epochs: int,
    on_progress: Progress,
) -> dict[str, Any]:
    """Train a LoRA adapter into ``out``; returns ``{"metrics": ..., "curve": [...]}``."""
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
    process = subprocess.Popen(
        [vllm_python(settings), str(SCRIPT), json.dumps(job)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        env=env,
        preexec_fn=die_with_parent,  # a killed retrain leaves no training behind
    )
    assert process.stdout is not None
    result: dict[str, Any] | None = None
    other: deque[str] = deque(maxlen=30)
    for line in process.stdout:
        try:
            event = json.loads(line)
        except ValueError:
            other.append(line.rstrip())
            continue
        if event.get("event") == "step":
            on_progress(event["step"], event["total"], f"loss {event['loss']:.3f}")
        elif event.get("event") == "done":
            result = event
    process.wait()
    if process.returncode != 0 or result is None:
        raise TrainingFailed(f"LoRA training failed (exit {process.returncode}); last output:\n" + "\n".join(other))
    return {"metrics": result["metrics"], "curve": result["curve"]}
