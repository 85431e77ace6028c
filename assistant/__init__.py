"""Conversational assistant: Rasa DIET routes, a LoRA-tuned LLM on vLLM answers, every turn in SQL."""

__version__ = "0.1.0"
