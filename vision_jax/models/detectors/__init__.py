"""Detection and localisation models (import each module by its full path)."""
