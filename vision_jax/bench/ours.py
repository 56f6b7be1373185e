"""Our train and eval steps, exactly as `train.py` compiles them, on synthetic device-resident batches."""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def bench_model(model: str, batch: int, resolution: int, channels: int, dtype: str, steps: int, warmup: int,
                tuned: bool) -> dict[str, Any]:
  """Train-step and eval-step images/s of a registered classifier (SGD momentum 0.9, softmax cross-entropy).

  Args:
    model: registered model name.
    batch: global batch size.
    resolution: square input size.
    channels: input channels.
    dtype: "float32" or "bfloat16" computation (parameters stay float32).
    steps: timed steps (median reported).
    warmup: untimed steps first; the first includes compilation.
    tuned: apply the XLA:CPU fixes of `vision_jax.backends.cpu.rewrites` (the library default).

  Returns:
    A dict of figures (see `vision_jax.bench.__main__` for the table).
  """
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  from vision_jax.backends.cpu import rewrites as xla_cpu  # pylint: disable=g-import-not-at-top
  from vision_jax.bench import timing  # pylint: disable=g-import-not-at-top
  from vision_jax import config_loading  # pylint: disable=g-import-not-at-top
  from vision_jax.data.features import DatasetSpec  # pylint: disable=g-import-not-at-top
  from vision_jax.tasks.classification import ClassificationTask  # pylint: disable=g-import-not-at-top
  from vision_jax.train_lib import optim, parallel  # pylint: disable=g-import-not-at-top
  from vision_jax.train_lib.state import TrainState  # pylint: disable=g-import-not-at-top

  config = config_loading.load_config(config_loading.packaged_config_path("bench.py"))
  config.model.name = model
  if dtype != "float32":
    config.model.kwargs.dtype = dtype
  config.optimizer.name, config.optimizer.momentum = "sgd", 0.9
  spec = DatasetSpec("synthetic", "train", batch, (resolution, resolution, channels), 10,
                     tuple(str(i) for i in range(10)))
  task = ClassificationTask(config, spec)
  tx = optim.make_optimizer(config.optimizer, optax.constant_schedule(0.01))
  mesh = parallel.make_mesh()
  replicated, batch_sharded = parallel.replicated(mesh), parallel.batch_sharded(mesh)
  rng = jax.random.PRNGKey(0)
  txs = {"model": tx}
  state = jax.jit(lambda: TrainState.create(task.init_variables(rng), txs, rng), out_shardings=replicated)()

  def train_body(state, batch_arrays):
    state, metrics = task.train_step(state, batch_arrays, txs=txs)
    return state.replace(step=state.step + 1), metrics

  train_step = xla_cpu.jit_train_step(train_body, tuned, in_shardings=(replicated, batch_sharded),
                                      out_shardings=(replicated, replicated), donate_argnums=0)
  eval_step = xla_cpu.jit_step(task.eval_step, tuned, in_shardings=(replicated, batch_sharded),
                               out_shardings=replicated)
  data_rng = np.random.default_rng(0)
  images = data_rng.integers(0, 256, (batch, resolution, resolution, channels), dtype=np.uint8)
  labels = data_rng.integers(0, 10, batch).astype(np.int32)
  train_batch = jax.device_put({"image": images, "label": labels}, batch_sharded)
  eval_batch = jax.device_put({"image": images, "label": labels, "mask": np.ones(batch, bool)}, batch_sharded)

  holder = {"state": state}

  def one_train_step():
    holder["state"], metrics = train_step(holder["state"], train_batch)
    return metrics

  t = time.perf_counter()
  train_step.lower(state, train_batch).compile()
  compile_sec = time.perf_counter() - t
  train = timing.time_steps(one_train_step, jax.block_until_ready, warmup, steps)
  evals = timing.time_steps(lambda: eval_step(holder["state"], eval_batch), jax.block_until_ready, 2, steps)
  figures = {
      "train_images_per_sec": batch / train["median_step_sec"],
      "eval_images_per_sec": batch / evals["median_step_sec"],
      "compile_sec": compile_sec,
      "first_step_sec": train["first_step_sec"],
      "peak_host_mib": timing.peak_host_memory_mib(),
      "backend": jax.default_backend(), "devices": jax.device_count(), "jax": jax.__version__,
  }
  stats = jax.devices()[0].memory_stats() or {}
  if "peak_bytes_in_use" in stats:
    figures["peak_device_mib"] = stats["peak_bytes_in_use"] / 2**20
  return figures


def bench_pipeline(batch: int, steps: int) -> dict[str, Any]:
  """Images/s of the training input pipeline alone on the embedded digits (host side, as train.py builds it)."""
  from vision_jax import config_loading  # pylint: disable=g-import-not-at-top
  from vision_jax.data import datasets, pipeline  # pylint: disable=g-import-not-at-top

  config = config_loading.load_config(config_loading.packaged_config_path("bench.py"))
  source, spec = datasets.load(config.dataset.name, config.dataset.train_split, config.dataset.data_dir or None)
  source = pipeline.cache_in_memory(source, spec, config.input.cache_mib)  # as train.py does
  dataset = pipeline.train_dataset(source, spec, batch, steps + 10, 0, pipeline.this_process(),
                                   config.input.num_threads, config.input.prefetch)
  batches = iter(dataset)
  for _ in range(10):  # thread start-up and first reads
    next(batches)
  t = time.perf_counter()
  for _ in range(steps):
    next(batches)
  return {"pipeline_images_per_sec": batch * steps / (time.perf_counter() - t), "dataset": spec.name}
