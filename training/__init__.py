"""Fine-tuning DIET and LoRA adapters from the logged conversations (see the retrain issue)."""
