"""The sentence encoder (TensorFlow, run in the Rasa environment) against the reference implementation
(Hugging Face transformers + PyTorch, run in the vLLM environment) on the same weights."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from assistant.config import Settings
from tests.conftest import REPO

TEXTS = [
    "What's the weather in Zürich today?",
    "can i make a reservation for redrobin",
    "hi",
    "Tell me a joke about CAFÉ prices!!",
    "transfer $1,500.00 from checking to savings, please",
]

OURS = """
import json, sys
sys.path.insert(0, sys.argv[1])
from nlu.encoder import BertEncoder, default_model_dir
texts = json.loads(sys.argv[2])
encoder = BertEncoder()
print(json.dumps({
    "model_dir": str(default_model_dir()),
    "ids": [encoder.tokenizer.encode(t) for t in texts],
    "embeddings": encoder.embed(texts).tolist(),
}))
"""

REFERENCE = """
import json, sys, torch
from transformers import AutoModel, AutoTokenizer
model_dir, texts = sys.argv[1], json.loads(sys.argv[2])
tokenizer, model = AutoTokenizer.from_pretrained(model_dir), AutoModel.from_pretrained(model_dir).eval()
batch = tokenizer(texts, padding=True, return_tensors="pt")
with torch.no_grad():
    states = model(**batch).last_hidden_state
mask = batch["attention_mask"].unsqueeze(-1).float()
pooled = torch.nn.functional.normalize((states * mask).sum(1) / mask.sum(1), dim=-1)
print(json.dumps({
    "ids": [tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts],
    "embeddings": pooled.tolist(),
}))
"""


def run(python: Path, script: str, *args: str) -> dict:
    result = subprocess.run([str(python), "-c", script, *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_encoder_matches_transformers() -> None:
    settings = Settings()
    if settings.rasa.python_env is None or settings.vllm.python_env is None:
        pytest.fail("run scripts/setup.sh first: it builds the Rasa and vLLM environments")
    ours = run(settings.rasa.python_env / "bin" / "python", OURS, str(REPO), json.dumps(TEXTS))
    reference = run(settings.vllm.python_env / "bin" / "python", REFERENCE, ours["model_dir"], json.dumps(TEXTS))
    assert ours["ids"] == reference["ids"]
    for mine, theirs in zip(ours["embeddings"], reference["embeddings"], strict=True):
        assert max(abs(a - b) for a, b in zip(mine, theirs, strict=True)) < 1e-4
        assert abs(sum(a * a for a in mine) - 1.0) < 1e-4
