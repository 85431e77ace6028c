"""Replies the LLM writes: the prompt, streaming, and the guards and checks that may cut or withhold them."""
