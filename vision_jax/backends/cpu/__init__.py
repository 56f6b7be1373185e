"""XLA:CPU rewrites: cheaper convolution gradients and batch-norm statistics on few-core CPUs."""
