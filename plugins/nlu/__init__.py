"""nlu plugins."""
