"""LoRA training throughput and peak memory: the project's trainer (training/lora_sft.py) against a plain
Hugging Face Trainer on the same base model, data, LoRA shape, batch size and epochs, in the same run.

Runs in the vLLM environment (torch, transformers, peft):

    <vllm env>/bin/python bench/gpu_lora.py                        # base model from .env.setup
    <vllm env>/bin/python bench/gpu_lora.py --model DIR --quantization 4bit --examples 2000

The data are chats built from the Personality Chat small-talk sets in ../shared/data (persona answers to
user questions, each under the same system prompt). On a CUDA GPU the project's trainer uses its defaults
there (bf16, gradient checkpointing, packing; 4-bit QLoRA with ``--quantization 4bit``); the baseline is
``transformers.Trainer`` with default arguments apart from the shared ones. Figures: reply+prompt tokens
trained per second (padding not counted), peak memory (GPU: ``torch.cuda.max_memory_allocated``; CPU:
peak resident set of the process, which only grows, so the second run's figure includes the first's), and
held-out loss, so a faster run that learns less shows up. Not a test: it prints, nothing is asserted.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer, Trainer, TrainerCallback, TrainingArguments

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "training"))
import lora_sft  # noqa: E402  (a script of the vLLM environment, not a package of the app's)

SHARED = REPO.parent / "shared" / "data" / "personality_chat"
SYSTEM = "You are a helpful, upbeat assistant."


def chats(count: int, seed: int) -> list[dict[str, Any]]:
    pairs = []
    for persona in ("Friendly", "Humorous", "Professional"):
        with (SHARED / f"Queries_Responses_{persona}_QnAMaker.tsv").open() as tsv:
            pairs += [(row["Question"], row["Answer"]) for row in csv.DictReader(tsv, delimiter="\t")]
    rng = random.Random(seed)
    rng.shuffle(pairs)
    picked = [pairs[i % len(pairs)] for i in range(count)]
    return [
        {
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": q},
                {"role": "assistant", "content": a},
            ]
        }
        for q, a in picked
    ]


def default_base_model() -> str | None:
    env = REPO / ".env.setup"
    for line in env.read_text().splitlines() if env.exists() else []:
        if line.startswith("ASSISTANT_VLLM__BASE_MODEL="):
            return line.split("=", 1)[1]
    return None


class TokenCounter(TrainerCallback):
    """Counts the non-padding tokens the baseline trains on, and times its training steps only."""

    def __init__(self) -> None:
        self.tokens = 0
        self.started = 0.0
        self.seconds = 0.0

    def on_train_begin(self, *_args: Any, **_kwargs: Any) -> None:
        self.started = time.monotonic()

    def on_train_end(self, *_args: Any, **_kwargs: Any) -> None:
        self.seconds = time.monotonic() - self.started


def baseline(cfg: dict[str, Any], device: str) -> dict[str, Any]:
    """transformers.Trainer + peft with default arguments: fp32 weights, no checkpointing, no packing."""
    tokenizer = AutoTokenizer.from_pretrained(cfg["base_model"])
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    train_rows = [lora_sft.encode(tokenizer, m, cfg["max_length"]) for m in lora_sft.read(cfg["train"])]
    val_rows = [lora_sft.encode(tokenizer, m, cfg["max_length"]) for m in lora_sft.read(cfg["validation"])]
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    model = AutoModelForCausalLM.from_pretrained(cfg["base_model"]).to(device)
    lora = LoraConfig(
        r=cfg["rank"], lora_alpha=cfg["alpha"], lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"], task_type="CAUSAL_LM",
    )  # fmt: skip
    model = get_peft_model(model, lora)
    counter = TokenCounter()

    def collate(rows: list[dict[str, list[int]]]) -> dict[str, torch.Tensor]:
        (batch,) = lora_sft.batches(rows, len(rows), pad_id)
        counter.tokens += int(batch["attention_mask"].sum())
        return batch

    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(
            output_dir=out, per_device_train_batch_size=cfg["batch_size"], num_train_epochs=cfg["epochs"],
            learning_rate=cfg["learning_rate"], lr_scheduler_type="constant", report_to=[], save_strategy="no",
            logging_strategy="no", remove_unused_columns=False, use_cpu=device == "cpu", seed=cfg.get("seed", 0),
        )  # fmt: skip
        trainer = Trainer(model=model, args=args, train_dataset=train_rows, data_collator=collate, callbacks=[counter])
        trainer.train()
    peak = lora_sft.peak_memory_mib(device)
    validation = lora_sft.batches(val_rows, cfg["batch_size"], pad_id)
    return {
        "train_tokens": counter.tokens,
        "train_seconds": counter.seconds,
        "train_tokens_per_s": counter.tokens / max(counter.seconds, 1e-9),
        "peak_memory_mib": peak,
        "candidate_loss": lora_sft.held_out_loss(model, validation, device),
        "dtype": "float32",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=default_base_model(), help="any Hugging Face model directory")
    parser.add_argument("--examples", type=int, default=None, help="training chats (default: 2000 on GPU, 64 on CPU)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--quantization", choices=["none", "4bit"], default="none")
    parser.add_argument("--out", type=Path, default=REPO / "var" / "bench" / "gpu_lora")
    args = parser.parse_args()
    if not args.model:
        parser.error("no base model: pass --model DIR (or run scripts/setup.sh, which writes .env.setup)")

    device = "cuda" if torch.cuda.is_available() else "cpu"
    count = args.examples or (2000 if device == "cuda" else 64)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = chats(count + max(16, count // 10), seed=0)
    train, validation = args.out / "train.jsonl", args.out / "validation.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:count]))
    validation.write_text("".join(json.dumps(r) + "\n" for r in rows[count:]))
    cfg = {
        "base_model": args.model, "train": str(train), "validation": str(validation), "out": str(args.out / "adapter"),
        "epochs": args.epochs, "batch_size": args.batch_size, "rank": args.rank, "alpha": 2 * args.rank,
        "learning_rate": 2e-4, "max_length": args.max_length, "quantization": args.quantization, "seed": 0,
    }  # fmt: skip
    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"{name}: {count} chats, {args.epochs} epoch(s), batch {args.batch_size}, model {args.model}", flush=True)

    ours = lora_sft.train(cfg, emit=lambda *_a, **_k: None)["metrics"]
    if device == "cuda":
        torch.cuda.empty_cache()
    plain = baseline(cfg, device)

    figures = {"device": name, "examples": count, "project": ours, "hf_trainer": plain}
    figures["tokens_per_s_ratio"] = ours["train_tokens_per_s"] / plain["train_tokens_per_s"]
    figures["peak_memory_ratio"] = ours["peak_memory_mib"] / plain["peak_memory_mib"]
    (args.out / "gpu_lora.json").write_text(json.dumps(figures, indent=2))
    print(f"{'':24}{'project trainer':>18}{'HF Trainer':>14}")
    print(f"{'settings':24}{ours['dtype'] + (' packed' if ours['packing'] else ''):>18}{plain['dtype']:>14}")
    for key, label in (("train_tokens_per_s", "tokens/s"), ("peak_memory_mib", "peak memory MiB"),
                       ("candidate_loss", "held-out loss"), ("train_seconds", "train seconds")):  # fmt: skip
        print(f"{label:24}{ours[key]:>18.2f}{plain[key]:>14.2f}")
    print(f"tokens/s ratio (project / HF Trainer): {figures['tokens_per_s_ratio']:.2f}")
    print(f"peak memory ratio (project / HF Trainer): {figures['peak_memory_ratio']:.2f}")
    print(f"figures: {args.out / 'gpu_lora.json'}")


if __name__ == "__main__":
    main()
