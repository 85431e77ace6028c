"""LoRA supervised fine-tuning with peft, run inside the vLLM environment (torch, transformers, peft live
there), so it imports nothing from the app. The app runs it as a script and reads its JSON-lines output:

    <vllm env>/bin/python training/lora_sft.py '{"base_model": ..., "train": ..., "validation": ...,
        "out": ..., "active_adapter": ..., "epochs": 3, ...}'

Loss is on the reply's tokens only (the prompt is masked). The held-out loss of the candidate, of the
active adapter and of the base model are measured on the same validation examples.
"""

from __future__ import annotations

import json
import math
import os
import random
import sys
import time
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
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


def main() -> None:
    cfg = json.loads(sys.argv[1])
    random.seed(cfg.get("seed", 0))
    torch.manual_seed(cfg.get("seed", 0))
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        torch.set_num_threads(max(1, os.cpu_count() or 1))
    dtype = torch.bfloat16 if device == "cuda" else torch.float32

    tokenizer = AutoTokenizer.from_pretrained(cfg["base_model"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_rows = [encode(tokenizer, m, cfg["max_length"]) for m in read(cfg["train"])]
    val_rows = [encode(tokenizer, m, cfg["max_length"]) for m in read(cfg["validation"])]
    validation = batches(val_rows, cfg["batch_size"], pad_id)

    base = AutoModelForCausalLM.from_pretrained(cfg["base_model"], dtype=dtype).to(device)
    lora = LoraConfig(
        r=cfg["rank"],
        lora_alpha=cfg["alpha"],
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(base, lora)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg["learning_rate"])
    steps_per_epoch = math.ceil(len(train_rows) / cfg["batch_size"])
    total_steps = steps_per_epoch * cfg["epochs"]
    emit("start", examples=len(train_rows), validation=len(val_rows), steps=total_steps, device=device)

    curve: list[dict[str, Any]] = []
    step, tokens, started = 0, 0, time.monotonic()
    for epoch in range(1, cfg["epochs"] + 1):
        random.shuffle(train_rows)
        model.train()
        for batch in batches(train_rows, cfg["batch_size"], pad_id):
            batch = {k: v.to(device) for k, v in batch.items()}
            loss = model(**batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            tokens += int(batch["attention_mask"].sum())
            value = loss.item()
            curve.append({"step": step, "epoch": epoch, "train_loss": value})
            emit("step", step=step, total=total_steps, loss=value)
        val_loss = held_out_loss(model, validation, device)
        curve.append({"step": step, "epoch": epoch, "validation_loss": val_loss})
        emit("epoch", epoch=epoch, validation_loss=val_loss)
    train_seconds = time.monotonic() - started

    model.save_pretrained(cfg["out"])
    tokenizer.save_pretrained(cfg["out"])
    losses = {"candidate": held_out_loss(model, validation, device)}
    if cfg.get("active_adapter"):
        model.load_adapter(cfg["active_adapter"], adapter_name="active")
        model.set_adapter("active")
        losses["active"] = held_out_loss(model, validation, device)
    with model.disable_adapter():
        losses["base"] = held_out_loss(model, validation, device)
    metrics = {
        **{f"{name}_loss": loss for name, loss in losses.items()},
        **{f"{name}_perplexity": math.exp(min(loss, 50)) for name, loss in losses.items()},
        "train_examples": len(train_rows),
        "validation_examples": len(val_rows),
        "train_seconds": train_seconds,
        "train_tokens_per_s": tokens / max(train_seconds, 1e-9),
        "device": device,
    }
    emit("done", metrics=metrics, curve=curve)


if __name__ == "__main__":
    main()
