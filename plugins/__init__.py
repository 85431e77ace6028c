"""Plugins shipped with the assistant: channels, NLU and LLM backends, actions (see pyproject entry points)."""
