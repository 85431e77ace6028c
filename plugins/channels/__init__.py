"""channels plugins."""
