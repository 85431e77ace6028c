"""llm plugins."""
