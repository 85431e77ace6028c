"""The knowledge base: documents read and split, indexed, retrieved (hybrid), and answers grounded in them."""
