"""Data: datasets by name, grain input pipelines, augmentation ops registered by name."""
