"""Generated datasets: deterministic by seed, balanced, shaped as declared, and separable by the property that
defines each class (beat rate and RR regularity measured by peak counting; the cross-sections of 3D shapes;
the targets of digit pairs against the vendored digits); loaded by name through `datasets.load` and the
grain pipeline."""

import hashlib

import numpy as np
import pytest

from vision_jax.data import datasets, digit_pairs, embedded_mnist, pipeline, synthetic_ecg, synthetic_volumes
from vision_jax.errors import DataError


def _r_peaks(signal, sample_rate=synthetic_ecg.SAMPLE_RATE, threshold=0.5, refractory=0.25):
  """R-peak times (s): local maxima of the signal minus its 0.31 s moving average, above `threshold` of the
  largest, greedily kept from the highest when at least `refractory` s from every kept peak."""
  k = 31
  trend = np.convolve(np.pad(signal, k // 2, mode="edge"), np.ones(k) / k, mode="valid")
  d = signal - trend
  index = np.flatnonzero((d[1:-1] >= d[:-2]) & (d[1:-1] > d[2:]) & (d[1:-1] > threshold * d.max())) + 1
  kept = []
  for i in index[np.argsort(-d[index])]:
    if all(abs(i - j) >= refractory * sample_rate for j in kept):
      kept.append(i)
  return np.sort(kept) / sample_rate


def _rhythm(signal):
  rr = np.diff(_r_peaks(signal))
  return 60.0 / np.median(rr), rr.std() / rr.mean()  # beats per minute, RR coefficient of variation


def test_ecg_shapes_balance_and_determinism():
  signals, labels = synthetic_ecg.generate(10, seed=3)
  assert signals.shape == (10, synthetic_ecg.LENGTH, 1) and signals.dtype == np.float32
  assert labels.dtype == np.int32 and sorted(np.bincount(labels, minlength=4)) == [2, 2, 3, 3]
  again, labels_again = synthetic_ecg.generate(10, seed=3)
  np.testing.assert_array_equal(again, signals)
  np.testing.assert_array_equal(labels_again, labels)
  assert not np.array_equal(synthetic_ecg.generate(10, seed=4)[0], signals)
  assert np.bincount(synthetic_ecg.generate(400, seed=0)[1]).tolist() == [100] * 4


@pytest.mark.parametrize("noise,fraction", [((0.0, 0.02), 1.0), (None, 0.95)])
def test_ecg_rhythm_measured_by_peak_counting_matches_the_class(noise, fraction):
  kwargs = {"noise_std": noise} if noise else {}
  signals, labels = synthetic_ecg.generate(240, seed=11, **kwargs)
  for c, name in enumerate(synthetic_ecg.CLASS_NAMES):
    rhythms = np.array([_rhythm(s) for s in signals[labels == c, :, 0]])
    rate, cv = rhythms[:, 0], rhythms[:, 1]
    if name == "irregular":
      ok = cv > 0.12
    else:
      low, high = synthetic_ecg.RATE_BPM[name]
      ok = (cv < 0.05) & (rate >= 0.95 * low) & (rate <= 1.05 * high)
    assert ok.mean() >= fraction, (name, rate[~ok], cv[~ok])


def _constant_slice_axes(mask):
  """Axes along which every non-empty slice of the mask has the same voxel count."""
  count = 0
  for axis in range(3):
    areas = mask.sum(axis=tuple(a for a in range(3) if a != axis))
    areas = areas[areas > 0]
    count += int(areas.min() == areas.max())
  return count


def test_volumes_shapes_balance_and_determinism():
  volumes, labels = synthetic_volumes.generate(10, seed=3)
  assert volumes.shape == (10, 16, 16, 16, 1) and volumes.dtype == np.uint8
  assert sorted(np.bincount(labels, minlength=4)) == [2, 2, 3, 3]
  again, _ = synthetic_volumes.generate(10, seed=3)
  np.testing.assert_array_equal(again, volumes)
  assert not np.array_equal(synthetic_volumes.generate(10, seed=4)[0], volumes)


def test_volume_shapes_are_told_apart_by_their_cross_sections():
  # Noise-free: a cube has constant slices along 3 axes, a cylinder along its axis only, a sphere along none.
  volumes, labels = synthetic_volumes.generate(200, seed=5, noise_std=0.0)
  background = round(synthetic_volumes.BACKGROUND * 255)
  foreground = volumes[..., 0] > background
  assert np.all(volumes[..., 0][~foreground] == background)
  expected = {"sphere": 0, "cube": 3, "cylinder": 1}
  sizes = {}
  for c, name in enumerate(synthetic_volumes.CLASS_NAMES):
    masks = foreground[labels == c]
    if name == "empty":
      assert not masks.any()
      continue
    assert [_constant_slice_axes(m) for m in masks] == [expected[name]] * len(masks), name
    sizes[name] = masks.reshape(len(masks), -1).sum(1)
  # Size alone does not give the class away: the voxel counts of every two shapes overlap.
  for a in sizes:
    for b in sizes:
      assert sizes[a].min() < sizes[b].max()


def test_pair_indices_are_balanced_and_deterministic():
  labels = np.random.default_rng(0).integers(0, 10, 500)
  first, second = digit_pairs.pair_indices(labels, seed=2)
  assert sorted(first) == list(range(500)) and np.all(first != second)
  same = labels[first] == labels[second]
  assert same.sum() == 250
  assert len(np.unique(labels[second][~same])) == 10
  again = digit_pairs.pair_indices(labels, seed=2)
  np.testing.assert_array_equal(again[0], first)
  np.testing.assert_array_equal(again[1], second)


def _digest(image):
  return hashlib.sha1(np.ascontiguousarray(image).reshape(28, 28).tobytes()).hexdigest()


def test_mnist_pairs_targets_agree_with_the_vendored_digits():
  source, spec = datasets.load("mnist_pairs", "test")
  assert spec.num_examples == embedded_mnist.NUM_TEST and spec.image_shape == (28, 28, 1)
  assert spec.extra_features == {"image2": (28, 28, 1), "label2": (), "digit_sum": (), "same": ()}
  images, labels = embedded_mnist.load_arrays()
  label_of = {_digest(im): int(lb) for im, lb in zip(images[embedded_mnist.NUM_TRAIN:],
                                                     labels[embedded_mnist.NUM_TRAIN:])}
  records = source.__getitems__(list(range(0, len(source), 7)))
  for r in records:
    assert label_of[_digest(r["image"])] == r["label"] and label_of[_digest(r["image2"])] == r["label2"]
    assert r["digit_sum"] == r["label"] + r["label2"] and r["same"] == int(r["label"] == r["label2"])
  assert sorted({_digest(r["image"]) for r in records}) == sorted(_digest(r["image"]) for r in records)


@pytest.mark.parametrize("name,shape,dtype", [("synthetic_ecg", (1024, 1), np.float32),
                                              ("synthetic_volumes", (16, 16, 16, 1), np.uint8),
                                              ("mnist_pairs", (28, 28, 1), np.uint8)])
def test_generated_datasets_load_by_name_into_batches(name, shape, dtype):
  source, spec = datasets.load(name, "test")
  assert spec.image_shape == shape and spec.num_classes == len(spec.class_names)
  (batch,) = list(pipeline.train_dataset(source, spec, 8, num_steps=1, seed=0))
  assert batch["image"].shape == (8,) + shape and batch["image"].dtype == dtype
  assert batch["label"].shape == (8,) and set(batch) == {"image", "label", *spec.extra_features}
  for key, feature_shape in spec.extra_features.items():
    assert batch[key].shape == (8,) + feature_shape
  with pytest.raises(DataError, match=f"{name!r} has no split 'validation'"):
    datasets.load(name, "validation")
