"""Background loops of a running app: deliveries from the outbox, the served models, erasure and retention."""
