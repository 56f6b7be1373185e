"""The training loop's parts: state with named networks, checkpoints, devices and hosts, optimizers, callbacks,
writers, progress, preemption, transfer learning, step memory, and the input-optimisation runner."""
