"""embedder plugins: sentence vectors for the knowledge base."""
