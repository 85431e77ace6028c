"""LoRA supervised fine-tuning with peft, run inside the vLLM environment (torch, transformers, peft live
there), so it imports nothing from the app. The app runs it as a script and reads its JSON-lines output:

    <vllm env>/bin/python training/lora_sft.py '{"base_model": ..., "train": ..., "validation": ...,
        "out": ..., "active_adapter": ..., "epochs": 3, ...}'

Loss is on the reply's tokens only (the prompt is masked). The held-out loss of the candidate, of the
active adapter and of the base model are measured on the same validation examples.

On CUDA (each option can be forced in the job; "auto" or absent means this default): bf16 weights and
compute, gradient checkpointing, and packing (several short chats share one row, so a batch carries few
padding tokens). ``"quantization": "4bit"`` is QLoRA: the frozen base model in bitsandbytes NF4. On CPU:
float32, no checkpointing, no packing (they cost time there and save nothing that matters).
"""

from __future__ import annotations

import json
import math
import os
import random
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training
from transformers import AutoModelForCausalLM, AutoTokenizer

IGNORE = -100


def emit(event: str, **data: Any) -> None:
    print(json.dumps({"event": event, **data}), flush=True)


def encode(tokenizer: Any, messages: list[dict[str, str]], max_length: int) -> dict[str, list[int]]:
    """Token ids of the whole chat, and labels that are the final reply's tokens only."""
    prompt = tokenizer.apply_chat_template(messages[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    if full_ids[: len(prompt_ids)] != prompt_ids:  # template renders the prompt differently: fall back to a cut
        prompt_ids = full_ids[: len(prompt_ids)]
    labels = [IGNORE] * len(prompt_ids) + full_ids[len(prompt_ids) :]
    return {"input_ids": full_ids[-max_length:], "labels": labels[-max_length:]}


def read(path: str) -> list[list[dict[str, str]]]:
    with open(path) as lines:
        return [json.loads(line)["messages"] for line in lines if line.strip()]


def pack(rows: list[dict[str, list[int]]], max_length: int) -> list[dict[str, list[int]]]:
    """Concatenate consecutive examples into rows of at most ``max_length`` tokens (each keeps its labels)."""
    packed: list[dict[str, list[int]]] = []
    current: dict[str, list[int]] = {"input_ids": [], "labels": []}
    for row in rows:
        if current["input_ids"] and len(current["input_ids"]) + len(row["input_ids"]) > max_length:
            packed.append(current)
            current = {"input_ids": [], "labels": []}
        current["input_ids"] = current["input_ids"] + row["input_ids"]
        current["labels"] = current["labels"] + row["labels"]
    if current["input_ids"]:
        packed.append(current)
    return packed


def batches(rows: list[dict[str, list[int]]], size: int, pad_id: int) -> list[dict[str, torch.Tensor]]:
    out = []
    for start in range(0, len(rows), size):
        chunk = rows[start : start + size]
        width = max(len(r["input_ids"]) for r in chunk)
        ids = torch.full((len(chunk), width), pad_id)
        labels = torch.full((len(chunk), width), IGNORE)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, row in enumerate(chunk):
            n = len(row["input_ids"])
            ids[i, :n] = torch.tensor(row["input_ids"])
            labels[i, :n] = torch.tensor(row["labels"])
            mask[i, :n] = 1
        out.append({"input_ids": ids, "labels": labels, "attention_mask": mask})
    return out


@torch.no_grad()
def held_out_loss(model: Any, data: list[dict[str, torch.Tensor]], device: str) -> float:
    """Mean loss per reply token over the validation set."""
    model.eval()
    total, tokens = 0.0, 0
    for batch in data:
        batch = {k: v.to(device) for k, v in batch.items()}
        n = int((batch["labels"][:, 1:] != IGNORE).sum())
        total += float(model(**batch).loss) * n
        tokens += n
    return total / max(tokens, 1)


@dataclass(frozen=True)
class Plan:
    """How this job trains on this machine (the job's options resolved against the device)."""

    device: str
    dtype: torch.dtype
    gradient_checkpointing: bool
    packing: bool
    quantization: str

    @classmethod
    def resolve(cls, cfg: dict[str, Any]) -> Plan:
        cuda = torch.cuda.is_available()
        device = "cuda" if cuda else "cpu"
        precision = cfg.get("precision") or "auto"
        if precision == "auto":
            precision = "bf16" if cuda and torch.cuda.is_bf16_supported() else ("fp16" if cuda else "fp32")
        dtypes = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
        if precision not in dtypes:
            raise SystemExit(f"precision must be auto, bf16, fp16 or fp32, not {precision!r}")
        quantization = cfg.get("quantization") or "none"
        if quantization not in ("none", "4bit"):
            raise SystemExit(f"quantization must be none or 4bit, not {quantization!r}")
        if quantization == "4bit" and not cuda:
            raise SystemExit("4-bit QLoRA needs a CUDA GPU (bitsandbytes); this machine has none")

        def option(name: str) -> bool:
            value = cfg.get(name)
            return cuda if value is None or value == "auto" else bool(value)

        return cls(device, dtypes[precision], option("gradient_checkpointing"), option("packing"), quantization)


def load_model(base_model: str, plan: Plan) -> Any:
    if plan.quantization == "4bit":
        from transformers import BitsAndBytesConfig

        quantization = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_compute_dtype=plan.dtype,
            bnb_4bit_use_double_quant=True,
        )
        model = AutoModelForCausalLM.from_pretrained(
            base_model, dtype=plan.dtype, quantization_config=quantization, device_map={"": 0}
        )
        return prepare_model_for_kbit_training(model, use_gradient_checkpointing=plan.gradient_checkpointing)
    model = AutoModelForCausalLM.from_pretrained(base_model, dtype=plan.dtype).to(plan.device)
    if plan.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()  # the frozen embeddings' output must carry gradients for LoRA
    return model


def peak_memory_mib(device: str) -> float:
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def train(cfg: dict[str, Any], emit: Callable[..., None] = emit) -> dict[str, Any]:
    """Train the adapter described by ``cfg`` into ``cfg["out"]``; returns ``{"metrics", "curve"}``."""
    random.seed(cfg.get("seed", 0))
    torch.manual_seed(cfg.get("seed", 0))
    plan = Plan.resolve(cfg)
    if plan.device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    else:
        torch.cuda.reset_peak_memory_stats()

    tokenizer = AutoTokenizer.from_pretrained(cfg["base_model"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_rows = [encode(tokenizer, m, cfg["max_length"]) for m in read(cfg["train"])]
    val_rows = [encode(tokenizer, m, cfg["max_length"]) for m in read(cfg["validation"])]
    validation = batches(val_rows, cfg["batch_size"], pad_id)

    base = load_model(cfg["base_model"], plan)
    lora = LoraConfig(
        r=cfg["rank"],
        lora_alpha=cfg["alpha"],
        lora_dropout=0.05,
        target_modules=cfg.get("target_modules") or ["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["learning_rate"])
    steps_per_epoch = math.ceil(
        len(pack(train_rows, cfg["max_length"]) if plan.packing else train_rows) / cfg["batch_size"]
    )
    total_steps = steps_per_epoch * cfg["epochs"]
    emit(
        "start", examples=len(train_rows), validation=len(val_rows), steps=total_steps, device=plan.device,
        dtype=str(plan.dtype).removeprefix("torch."), gradient_checkpointing=plan.gradient_checkpointing,
        packing=plan.packing, quantization=plan.quantization,
    )  # fmt: skip

    curve: list[dict[str, Any]] = []
    step, tokens, started = 0, 0, time.monotonic()
    for epoch in range(1, cfg["epochs"] + 1):
        random.shuffle(train_rows)
        rows = pack(train_rows, cfg["max_length"]) if plan.packing else train_rows
        model.train()
        for batch in batches(rows, cfg["batch_size"], pad_id)[: total_steps - step]:
            batch = {k: v.to(plan.device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            tokens += int(batch["attention_mask"].sum())
            value = loss.item()
            curve.append({"step": step, "epoch": epoch, "train_loss": value})
            emit("step", step=step, total=total_steps, loss=value)
        val_loss = held_out_loss(model, validation, plan.device)
        curve.append({"step": step, "epoch": epoch, "validation_loss": val_loss})
        emit("epoch", epoch=epoch, validation_loss=val_loss)
    train_seconds = time.monotonic() - started
    peak_mib = peak_memory_mib(plan.device)

    model.save_pretrained(cfg["out"])
    tokenizer.save_pretrained(cfg["out"])
    losses = {"candidate": held_out_loss(model, validation, plan.device)}
    if cfg.get("active_adapter"):
        model.load_adapter(cfg["active_adapter"], adapter_name="active")
        model.set_adapter("active")
        losses["active"] = held_out_loss(model, validation, plan.device)
    with model.disable_adapter():
        losses["base"] = held_out_loss(model, validation, plan.device)
    metrics = {
        **{f"{name}_loss": loss for name, loss in losses.items()},
        **{f"{name}_perplexity": math.exp(min(loss, 50)) for name, loss in losses.items()},
        "train_examples": len(train_rows),
        "validation_examples": len(val_rows),
        "train_seconds": train_seconds,
        "train_tokens": tokens,
        "train_tokens_per_s": tokens / max(train_seconds, 1e-9),
        "peak_memory_mib": peak_mib,
        "device": plan.device,
        "dtype": str(plan.dtype).removeprefix("torch."),
        "gradient_checkpointing": plan.gradient_checkpointing,
        "packing": plan.packing,
        "quantization": plan.quantization,
    }
    return {"metrics": metrics, "curve": curve}


def main() -> None:
    result = train(json.loads(sys.argv[1]))
    emit("done", **result)


if __name__ == "__main__":
    main()
