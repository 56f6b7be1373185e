"""Synthetic glyph classes: the segment renderer against a NumPy float64 reference and a hand-worked profile, Bezier
sampling against de Casteljau's construction, MNIST's layout measured with NumPy, static shapes and determinism."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.data import synthetic_glyphs as G


def ref_render(segments, width, size):
  """NumPy float64: ink clip(width / 2 + 1/2 - distance to the nearest segment, 0, 1) at every pixel centre."""
  rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
  points = np.stack([cols, rows], -1)  # (x, y)
  best = np.full((size, size), np.inf)
  for (ax, ay), (bx, by) in np.asarray(segments, np.float64):
    a, d = np.array([ax, ay]), np.array([bx - ax, by - ay])
    t = np.clip(((points - a) @ d) / (d @ d), 0, 1)
    best = np.minimum(best, np.linalg.norm(points - a - t[..., None] * d, axis=-1))
  return np.clip(width / 2 + 0.5 - best, 0, 1)


def test_straight_segment_profile_by_hand():
  # A horizontal segment on row 10 from x = 5 to x = 20, width 2: ink 1 on the row, 0.5 one pixel off, 0 beyond.
  image = np.asarray(G.render_segments(jnp.array([[[5.0, 10.0], [20.0, 10.0]]]), jnp.array([True]), 2.0, 28))
  np.testing.assert_allclose(image[7:14, 12], [0, 0, 0.5, 1, 0.5, 0, 0], atol=1e-5)
  np.testing.assert_allclose(image[10, 2:8], [0, 0, 0.5, 1, 1, 1], atol=1e-5)  # the end cap is round: x = 4 is 1 px off
  assert image[9, 4] == pytest.approx(max(0.0, 1.5 - np.sqrt(2)), abs=1e-5)


def test_renderer_matches_numpy_reference():
  rng = np.random.default_rng(0)
  segments = rng.uniform(2, 26, size=(5, 2, 2)).astype(np.float32)
  valid = np.array([True, True, False, True, True])
  ours = np.asarray(G.render_segments(jnp.asarray(segments), jnp.asarray(valid), 2.3, 28))
  np.testing.assert_allclose(ours, ref_render(segments[valid], 2.3, 28), atol=2e-5)


def test_bezier_points_match_de_casteljau():
  control = np.random.default_rng(1).uniform(size=(4, 2))

  def casteljau(t):
    points = control.copy()
    while len(points) > 1:
      points = (1 - t) * points[:-1] + t * points[1:]
    return points[0]
  expected = np.stack([casteljau(t) for t in np.linspace(0, 1, 7)])
  np.testing.assert_allclose(np.asarray(G.bezier_points(jnp.asarray(control, jnp.float32), 7)), expected, atol=1e-6)


@pytest.fixture(scope="module")
def glyphs():
  batch = jax.jit(G.glyph_batch, static_argnums=(3, 4))
  return batch, np.asarray(batch(jax.random.PRNGKey(0), jnp.arange(6), jax.random.PRNGKey(1), 4, G.GlyphStyle()))


def test_static_shapes_and_range(glyphs):
  _, images = glyphs
  assert images.shape == (24, 28, 28, 1) and images.dtype == np.float32
  assert images.min() >= 0 and images.max() <= 255 and (images.max(axis=(1, 2, 3)) == 255).all()


def test_mnist_layout(glyphs):
  # Every glyph's centre of mass near the canvas centre, its ink box's longer side about 20 pixels (MNIST's layout).
  _, images = glyphs
  ink = images[..., 0].astype(np.float64)
  rows, cols = np.mgrid[0:28, 0:28]
  mass = ink.sum((1, 2))
  centre = np.stack([(ink * rows).sum((1, 2)) / mass, (ink * cols).sum((1, 2)) / mass], -1)
  assert np.abs(centre - 14).max() < 1.5
  sides = [max(np.ptp(np.nonzero(im > 0)[0]), np.ptp(np.nonzero(im > 0)[1])) + 1 for im in ink]
  assert 18 <= min(sides) and max(sides) <= 22


def test_classes_are_deterministic_per_key(glyphs):
  batch, images = glyphs
  again = np.asarray(batch(jax.random.PRNGKey(0), jnp.arange(6), jax.random.PRNGKey(1), 4, G.GlyphStyle()))
  np.testing.assert_array_equal(images, again)
  # A class's program depends only on the family key and its id, not on its position in the batch.
  programs_of = jax.jit(lambda ids: jax.vmap(G.glyph_program)(G.class_keys(jax.random.PRNGKey(0), ids)))
  programs = programs_of(jnp.arange(6))
  reversed_points = np.asarray(programs_of(jnp.arange(6)[::-1])["points"])  # same shape: no second compile
  np.testing.assert_array_equal(reversed_points[::-1], np.asarray(programs["points"]))
  assert not np.array_equal(np.asarray(programs["points"][2]), np.asarray(programs["points"][3]))
  assert not bool(programs["joined"][:, 0].any()) and programs["active"][:, 0].all()


def test_examples_of_a_class_are_closer_than_other_classes(glyphs):
  # In pixels, two examples of one class are on average nearer each other than first examples of different classes.
  _, images = glyphs
  flat = images.reshape(6, 4, -1).astype(np.float64) / 255
  within = np.mean([np.linalg.norm(c[0] - c[1]) for c in flat])
  between = np.mean([np.linalg.norm(flat[i, 0] - flat[j, 0]) for i in range(6) for j in range(i + 1, 6)])
  assert within < between
