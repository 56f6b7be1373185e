"""Backend-specific speed rewrites, applied by the loop's jit helper, never by models."""
