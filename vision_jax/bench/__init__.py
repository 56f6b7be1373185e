"""Training-speed benchmark: our train step against the same architecture in peer frameworks.

    python -m vision_jax.bench                                   # the issue's default suite, table + JSON
    python -m vision_jax.bench --models=resnet18_cifar --batch=128 --peers=torch,keras
    python -m vision_jax.bench --models=lenet5_relu --compare_untuned  # also without the XLA:CPU fixes
    VISION_JAX_XLA_CPU_TUNING=0 python -m vision_jax.bench --families=embedding  # family rows without them

Each measurement runs in its own subprocess (`python -m vision_jax.bench.worker`), so thread pools and peak
memory of one framework never leak into another's figures.
"""
