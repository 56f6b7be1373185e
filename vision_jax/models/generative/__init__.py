"""Generative networks: DCGAN generator and discriminator (`dcgan`), their class-conditional forms
(`conditional`: concatenation and projection discriminators). Built by the `gan` task from its config; not in the
classifier registry (they do not map images to class logits)."""

from vision_jax.models.generative.conditional import (ConcatDiscriminator, ConditionalGenerator,
                                                      ProjectionDiscriminator)
from vision_jax.models.generative.dcgan import (DCGAN_INIT, Discriminator, DiscriminatorTrunk, Generator,
                                                num_stages)

__all__ = ["DCGAN_INIT", "ConcatDiscriminator", "ConditionalGenerator", "Discriminator", "DiscriminatorTrunk",
           "Generator", "ProjectionDiscriminator", "num_stages"]
