"""Trains the FID feature network of one embedded dataset and writes its weights next to the package's others.

    python -m vision_jax.evaluation.feature_nets.train --dataset=mnist_embedded
    python -m vision_jax.evaluation.feature_nets.train --dataset=fashion_mnist_embedded

Train split (8,000 images), Adam 1e-3, batch 64, 6 epochs, seed 0, inputs scaled to [-1, 1] with a random shift of
up to 2 pixels; prints and stores the accuracy on the 2,000 held-out test images.
"""

from __future__ import annotations

import argparse

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vision_jax.data import embedded_mnist, fashion_mnist
from vision_jax.evaluation import feature_nets


def split_arrays(dataset: str, split: str) -> tuple[np.ndarray, np.ndarray]:
  """(images uint8 [N, 28, 28, 1], labels int32 [N]) of the fixed 8,000 / 2,000 split of an embedded dataset."""
  if dataset == "fashion_mnist_embedded":
    arrays, _ = fashion_mnist.split_arrays(split)
    return arrays["image"], arrays["label"]
  images, labels = embedded_mnist.load_arrays()
  part = slice(0, embedded_mnist.NUM_TRAIN) if split == "train" else slice(embedded_mnist.NUM_TRAIN, None)
  return images[part, :, :, None], labels[part].astype(np.int32)


def to_model_range(images: np.ndarray) -> np.ndarray:
  """uint8 images -> float32 in [-1, 1]."""
  return images.astype(np.float32) / 127.5 - 1.0


def train(dataset: str, epochs: int = 6, batch: int = 64, seed: int = 0) -> tuple[dict, float]:
  """Trains the feature network; returns (params, test accuracy)."""
  images, labels = split_arrays(dataset, "train")
  test_images, test_labels = split_arrays(dataset, "test")
  module = feature_nets.FeatureNet()
  params = module.init(jax.random.PRNGKey(seed), jnp.zeros((1, 28, 28, 1)))["params"]
  tx = optax.adam(1e-3)
  opt_state = tx.init(params)

  @jax.jit
  def step(params, opt_state, x, y):
    def loss_fn(p):
      logits = module.apply({"params": p}, x)[1]
      return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    grads = jax.grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state

  predict = jax.jit(lambda p, x: jnp.argmax(module.apply({"params": p}, x)[1], -1))
  rng = np.random.default_rng(seed)
  padded = np.pad(to_model_range(images), ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  for _ in range(epochs):
    order = rng.permutation(len(images))
    for start in range(0, len(order) - batch + 1, batch):
      idx = order[start:start + batch]
      dy, dx = rng.integers(0, 5, 2)
      x = padded[idx, dy:dy + 28, dx:dx + 28]
      params, opt_state = step(params, opt_state, x, labels[idx])
  correct = sum(int(np.sum(np.asarray(predict(params, to_model_range(test_images[i:i + 500])))
                           == test_labels[i:i + 500])) for i in range(0, len(test_images), 500))
  return params, correct / len(test_images)


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--dataset", choices=feature_nets.DATASETS, default="mnist_embedded")
  parser.add_argument("--epochs", type=int, default=6)
  args = parser.parse_args()
  params, accuracy = train(args.dataset, args.epochs)
  path = feature_nets.weights_path(args.dataset)
  np.savez(path, test_accuracy=np.float64(accuracy), **feature_nets.flatten_params(params))
  print(f"{args.dataset}: test accuracy {accuracy:.4f} on 2000 held-out images; wrote {path}")


if __name__ == "__main__":
  main()
