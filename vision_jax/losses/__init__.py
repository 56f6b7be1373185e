"""Pure loss functions by topic: `classification`, `segmentation` (pixel cross-entropy, focal, Dice, Jaccard),
`metric` (contrastive, triplet with online mining); detection, adversarial and perceptual losses arrive with
their task families. Each takes arrays and returns arrays (shapes in the
docstrings); none reads a config or a train state."""
