"""Pure loss functions by topic: `classification` now; detection, segmentation, metric, adversarial and
perceptual losses arrive with their task families. Each takes arrays and returns arrays (shapes in the
docstrings); none reads a config or a train state."""
