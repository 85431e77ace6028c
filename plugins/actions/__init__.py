"""actions plugins."""
