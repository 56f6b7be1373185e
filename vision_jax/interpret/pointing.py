"""The pointing game (Zhang et al., "Top-down Neural Attention by Excitation Backprop", 2016; used in the
Grad-CAM paper): a heatmap scores a hit when its maximum lies inside the object's box. Here on the
`digit_localization` test cards, over the correctly classified images, for each attribution method.

    python -m vision_jax.interpret pointing --workdir=runs/interpret/classifier [--limit=2000] [--methods=...]
"""

from __future__ import annotations

import json
import os
import time
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from vision_jax.interpret import commands
from vision_jax.interpret.network import Network


def hits(maps: np.ndarray, boxes: np.ndarray) -> np.ndarray:
  """Whether each map's maximum pixel (row r, column c; the first one on ties) lies in its box,
  x1 <= c < x2 and y1 <= r < y2 (boxes [N, 4] as x1, y1, x2, y2 in pixels, x2/y2 exclusive).

  Args:
    maps: [N, H, W].
    boxes: [N, 4].

  Returns:
    [N] booleans.
  """
  maps = np.asarray(maps)
  flat = maps.reshape(len(maps), -1).argmax(axis=1)
  rows, cols = np.divmod(flat, maps.shape[2])
  b = np.asarray(boxes, np.float64)
  return (cols >= b[:, 0]) & (cols < b[:, 2]) & (rows >= b[:, 1]) & (rows < b[:, 3])


def pointing_game(net: Network, images: np.ndarray, labels: np.ndarray, boxes: np.ndarray,
                  methods: Sequence[str] = commands.HEATMAP_METHODS, batch: int = 50,
                  layer: str | None = None) -> dict[str, dict[str, float]]:
  """Pointing-game accuracy of each method on the correctly classified images.

  Args:
    net: the classifier.
    images: [N, H, W, C] pixels in [0, 1].
    labels: [N] true classes.
    boxes: [N, 4] object boxes (x1, y1, x2, y2).
    methods: `commands.HEATMAP_METHODS` names.
    batch: images per call.
    layer: the Grad-CAM layer (`commands.default_layer` when None).

  Returns:
    {method: {"hit_rate", "hits", "images" (correctly classified), "seconds"}}, plus "accuracy" (the classifier's,
    on all N) under the key "classifier".
  """
  logits = np.concatenate([np.asarray(jax.jit(net.logits)(jnp.asarray(images[i:i + batch])))
                           for i in range(0, len(images), batch)])
  correct = np.flatnonzero(logits.argmax(-1) == labels)
  results: dict[str, dict[str, float]] = {"classifier": {"accuracy": float(len(correct) / len(images)),
                                                         "images": float(len(images))}}
  for method in methods:
    start = time.time()
    fn = jax.jit(lambda x, t, m=method: commands.heatmaps_of(net, m, x, t, layer))
    got = []
    for i in range(0, len(correct), batch):
      pick = correct[i:i + batch]
      maps = fn(jnp.asarray(images[pick]), jnp.asarray(labels[pick]))
      got.append(hits(np.asarray(maps), boxes[pick]))
    hit = np.concatenate(got) if got else np.zeros(0, bool)
    results[method] = {"hit_rate": float(hit.mean()) if len(hit) else 0.0, "hits": float(hit.sum()),
                       "images": float(len(hit)), "seconds": time.time() - start}
  return results


def digit_localization_test(limit: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """The first `limit` `digit_localization` test cards: (pixels [N, 64, 64, 1] in [0, 1], labels [N],
  digit boxes [N, 4])."""
  from vision_jax.data import digit_localization  # pylint: disable=import-outside-toplevel
  arrays, _ = digit_localization.split_arrays("test")
  return (arrays["image"][:limit].astype(np.float32) / 255.0, arrays["label"][:limit].astype(np.int32),
          arrays["boxes"][:limit, 0])


def write_report(results: dict[str, dict[str, float]], path: str) -> list[str]:
  """Writes the results as JSON to `path`; returns printable lines."""
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w", encoding="utf-8") as f:
    json.dump(results, f, indent=2)
  cls = results["classifier"]
  lines = [f"classifier accuracy {cls['accuracy']:.4f} on {int(cls['images'])} test cards"]
  for method, r in results.items():
    if method != "classifier":
      lines.append(f"{method:22s} pointing game {r['hit_rate']:.4f} ({int(r['hits'])}/{int(r['images'])} correctly "
                   f"classified; {r['seconds']:.0f} s)")
  return lines + [f"wrote {path}"]
