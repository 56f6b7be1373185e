"""Gram matrices, total variation, octave resizing, blur and the gradient tricks against NumPy, PIL and SciPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from vision_jax.interpret import image_ops, pointing
from vision_jax.interpret.style import gram_matrix
from vision_jax.layers.activations import guided_relu
from vision_jax.tasks.input_problem import total_variation

RNG = np.random.default_rng(0)


def test_gram_matrix_matches_numpy():
  features = RNG.normal(size=(2, 5, 3, 4)).astype(np.float32)
  want = np.stack([f.reshape(15, 4).T @ f.reshape(15, 4) / 15 for f in features.astype(np.float64)])
  np.testing.assert_allclose(np.asarray(gram_matrix(jnp.asarray(features))), want, rtol=1e-5, atol=1e-6)


def test_total_variation_matches_numpy():
  images = RNG.uniform(size=(2, 6, 7, 3)).astype(np.float32)
  want = [sum(abs(float(x[i + 1, j, c]) - float(x[i, j, c])) for i in range(5) for j in range(7) for c in range(3))
          + sum(abs(float(x[i, j + 1, c]) - float(x[i, j, c])) for i in range(6) for j in range(6) for c in range(3))
          for x in images]
  np.testing.assert_allclose(np.asarray(total_variation(jnp.asarray(images))), want, rtol=1e-5)


def _triangle_resize_1d(n_in: int, n_out: int) -> np.ndarray:
  """[n_out, n_in] bilinear weights with half-pixel centres, the triangle widened by the shrink factor and
  renormalised at the edges (the antialiased bilinear of PIL and jax.image.resize)."""
  scale = n_out / n_in
  support = max(1.0, 1.0 / scale)
  weights = np.zeros((n_out, n_in))
  for o in range(n_out):
    centre = (o + 0.5) / scale - 0.5
    w = np.maximum(0.0, 1.0 - np.abs(np.arange(n_in) - centre) / support)
    weights[o] = w / w.sum()
  return weights


@pytest.mark.parametrize("size", [(7, 9), (20, 26), (28, 28)])
def test_octave_resize_matches_numpy_and_pil(size):
  image = RNG.uniform(size=(14, 18)).astype(np.float32)
  want = _triangle_resize_1d(14, size[0]) @ image.astype(np.float64) @ _triangle_resize_1d(18, size[1]).T
  got = np.asarray(image_ops.resize(jnp.asarray(image)[None, :, :, None], size))[0, :, :, 0]
  np.testing.assert_allclose(got, want, atol=1e-5)
  pil = np.asarray(Image.fromarray(image, mode="F").resize((size[1], size[0]), Image.BILINEAR))
  np.testing.assert_allclose(got, pil, atol=1e-4)


def test_octave_sizes():
  assert image_ops.octave_sizes(96, 64, 3, 1.4) == [(49, 33), (69, 46), (96, 64)]
  assert image_ops.octave_sizes(20, 20, 3, 2.0) == [(8, 8), (10, 10), (20, 20)]  # at least 8 pixels


def test_gaussian_blur_matches_scipy():
  images = RNG.uniform(size=(1, 12, 10, 2)).astype(np.float32)
  got = np.asarray(image_ops.gaussian_blur(jnp.asarray(images), 1.0))
  want = ndimage.gaussian_filter(images.astype(np.float64), sigma=(0, 1.0, 1.0, 0), mode="mirror", truncate=2.0)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_normalized_gradient_divides_by_mean_abs():
  weights = jnp.array([1.0, -3.0, 2.0, 6.0])
  grad = jax.grad(lambda x: jnp.sum(weights * image_ops.normalized_gradient(x)))(jnp.ones(4))
  np.testing.assert_allclose(np.asarray(grad), np.asarray(weights) / 3.0, rtol=1e-6)  # mean |w| = 3


def test_guided_relu_masks_negative_inputs_and_gradients():
  x = jnp.array([-1.0, 2.0, 3.0, -0.5])
  upstream = jnp.array([5.0, -4.0, 7.0, 1.0])
  np.testing.assert_array_equal(np.asarray(guided_relu(x)), [0.0, 2.0, 3.0, 0.0])
  _, vjp = jax.vjp(guided_relu, x)
  np.testing.assert_array_equal(np.asarray(vjp(upstream)[0]), [0.0, 0.0, 7.0, 0.0])
  _, plain = jax.vjp(jax.nn.relu, x)
  np.testing.assert_array_equal(np.asarray(plain(upstream)[0]), [0.0, -4.0, 7.0, 0.0])


def test_pointing_hits_by_hand():
  maps = np.zeros((3, 8, 8), np.float32)
  maps[0, 2, 5] = 1.0  # row 2, column 5: inside x 4..6, y 1..3
  maps[1, 3, 6] = 1.0  # column 6 is the exclusive edge x2 = 6: outside
  maps[2, 7, 0] = 1.0
  boxes = np.array([[4, 1, 6, 3], [4, 1, 6, 4], [0, 6, 2, 8]], np.float32)
  np.testing.assert_array_equal(pointing.hits(maps, boxes), [True, False, True])
