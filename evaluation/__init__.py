"""Evaluation: NLU (Rasa), LLM replies and the knowledge base measured on data the reviewers own."""
