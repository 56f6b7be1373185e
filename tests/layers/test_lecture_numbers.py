"""The lectures' worked numbers, checked on the library's real layers with expected values from the definitions."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax import layers, models


def _init_shape(module, shape):
  variables = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros(shape))
  return variables


@pytest.mark.parametrize("n,f,p,s,padding", [
    (6, 3, 0, 1, "VALID"),     # the lectures' 6x6 * 3x3 -> 4x4
    (6, 3, 1, 1, [(1, 1)] * 2),  # "same": p = (f - 1) / 2 keeps 6
    (7, 3, 0, 2, "VALID"),     # strided: floor((7 - 3) / 2) + 1 = 3
    (39, 3, 0, 1, "VALID"),    # the lectures' ConvNet example: 39 -> 37
    (37, 5, 0, 2, "VALID"),    # 37 -> 17
    (17, 5, 0, 2, "VALID"),    # 17 -> 7
    (224, 7, 3, 2, [(3, 3)] * 2),  # ResNet stem: 224 -> 112
])
def test_output_size_formula_matches_real_conv(n, f, p, s, padding):
  expected = (n + 2 * p - f) // s + 1
  assert layers.output_size(n, f, p, s) == expected
  out = jax.eval_shape(lambda x: nn.Conv(2, (f, f), s, padding=padding).init_with_output(jax.random.key(0), x)[0],
                       jnp.zeros((1, n, n, 1)))
  assert out.shape == (1, expected, expected, 2)


@pytest.mark.parametrize("n,f,s,p", [(4, 2, 2, 0), (5, 3, 1, 0), (28, 2, 2, 0), (112, 3, 2, 1)])
def test_output_size_formula_matches_real_pooling(n, f, s, p):
  x = jnp.zeros((1, n, n, 1))
  expected = (n + 2 * p - f) // s + 1
  assert layers.max_pool(x, f, s, p).shape[1] == expected == layers.output_size(n, f, p, s)
  assert layers.avg_pool(x, f, s, p).shape[1] == expected


def test_max_pool_lecture_example():
  # The lectures' 4x4 max pooling example with f = 2, s = 2.
  x = jnp.array([[1, 3, 2, 1], [2, 9, 1, 1], [1, 3, 2, 3], [5, 6, 1, 2]], jnp.float32)[None, :, :, None]
  np.testing.assert_array_equal(layers.max_pool(x, 2, 2)[0, :, :, 0], [[9, 2], [6, 3]])


def test_ten_3x3x3_filters_have_280_parameters():
  v = _init_shape(nn.Conv(10, (3, 3)), (1, 8, 8, 3))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(v)) == 10 * (3 * 3 * 3 + 1) == 280


class IntroNet(nn.Module):
  """The introductory network: 30x30x1 input, 10 filters 5x5, 2x2 max pool, FC-200."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Conv(10, (5, 5), padding="VALID")(x))
    x = layers.max_pool(x, 2, 2)
    return nn.Dense(200)(x.reshape((x.shape[0], -1)))


class DenseExample(nn.Module):
  """The functional-API example: 64 inputs -> 32 -> 32 -> 10."""

  @nn.compact
  def __call__(self, x):
    x = nn.relu(nn.Dense(32)(x))
    x = nn.relu(nn.Dense(32)(x))
    return nn.Dense(10)(x)


def test_intro_network_has_338460_parameters():
  # conv: 10 * (5*5*1 + 1) = 260; 26x26x10 pooled to 13x13x10 = 1690; FC: 1690 * 200 + 200 = 338,200.
  v = _init_shape(IntroNet(), (1, 30, 30, 1))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(v)) == 260 + 338_200 == 338_460


def test_dense_functional_example_has_3466_parameters():
  v = _init_shape(DenseExample(), (1, 64))
  assert sum(np.prod(x.shape) for x in jax.tree.leaves(v)) == (64 * 32 + 32) + (32 * 32 + 32) + (32 * 10 + 10) == 3466


class NormalConv(nn.Module):

  @nn.compact
  def __call__(self, x, train=False):
    return nn.Conv(5, (3, 3), padding="VALID", use_bias=False)(x)


class SeparableConvNet(nn.Module):

  @nn.compact
  def __call__(self, x, train=False):
    return layers.SeparableConv(5, 3, padding="VALID")(x)


class InceptionCost(nn.Module):
  bottleneck: bool

  @nn.compact
  def __call__(self, x, train=False):
    if self.bottleneck:
      x = nn.Conv(16, (1, 1))(x)
    return nn.Conv(32, (5, 5), padding="SAME")(x)


def test_macs_normal_vs_depthwise_separable():
  # Normal: 4x4 outputs x 5 filters x (3x3x3) = 2,160. Depthwise: 4x4 x 3 channels x 3x3 = 432;
  # pointwise: 4x4 x 5 x 3 = 240; 672 in all.
  normal = models.layer_table(NormalConv(), (6, 6, 3))
  assert [r.macs for r in normal] == [4 * 4 * 5 * 3 * 3 * 3] == [2160]
  separable = models.layer_table(SeparableConvNet(), (6, 6, 3))
  leaf = {r.path.split("/")[-1]: r.macs for r in separable}
  assert leaf["depthwise"] == 432 and leaf["pointwise"] == 240
  assert leaf["depthwise"] + leaf["pointwise"] == 672


def test_macs_inception_bottleneck():
  # 5x5 conv 28x28x192 -> 28x28x32: 28*28*32 * 5*5*192 = 120,422,400 ("about 120 million").
  direct = sum(r.macs for r in models.layer_table(InceptionCost(False), (28, 28, 192)))
  assert direct == 28 * 28 * 32 * 5 * 5 * 192 == 120_422_400
  # 1x1 to 16: 28*28*16*192 = 2,408,448; then 5x5 16 -> 32: 28*28*32*5*5*16 = 10,035,200: 12.44 million.
  reduced = sum(r.macs for r in models.layer_table(InceptionCost(True), (28, 28, 192)))
  assert reduced == 2_408_448 + 10_035_200 == 12_443_648
  assert round(reduced / 1e6, 1) == 12.4 and round(direct / 1e6) == 120


IMAGE = [[3, 0, 1, 2, 7, 4], [1, 5, 8, 9, 3, 1], [2, 7, 2, 5, 1, 3],
         [0, 1, 3, 1, 7, 8], [4, 2, 1, 6, 2, 8], [2, 4, 5, 2, 3, 9]]
# Worked by hand: each entry is (sum of the left 3-column window column) - (sum of its right column), e.g.
# top-left: (3 + 1 + 2) - (1 + 8 + 2) = -5.
EDGE_MAP = [[-5, -4, 0, 8], [-10, -2, 2, 3], [0, -2, -4, -7], [-3, -2, -3, -16]]


def test_vertical_edge_filter_on_lecture_image():
  kernel = np.array([[1, 0, -1]] * 3, np.float32)
  conv = nn.Conv(1, (3, 3), padding="VALID", use_bias=False)
  params = {"params": {"kernel": kernel[:, :, None, None]}}
  out = conv.apply(params, jnp.array(IMAGE, jnp.float32)[None, :, :, None])[0, :, :, 0]
  np.testing.assert_array_equal(out, EDGE_MAP)
  np.testing.assert_array_equal(out[0], [-5, -4, 0, 8])


def test_transposed_convolution_lecture_example():
  # Each input value scales the kernel, pasted at its position (stride 1), overlaps added:
  # 1 * K at (0, 1) + 2 * K at (1, 0) + 3 * K at (1, 1) = [[0,0,1],[0,4,6],[4,12,9]].
  x = jnp.array([[0, 1], [2, 3]], jnp.float32)[None, :, :, None]
  kernel = np.array([[0, 1], [2, 3]], np.float32)[:, :, None, None]
  conv_t = nn.ConvTranspose(1, (2, 2), padding="VALID", use_bias=False, transpose_kernel=True)
  out = conv_t.apply({"params": {"kernel": kernel}}, x)[0, :, :, 0]
  np.testing.assert_array_equal(out, [[0, 0, 1], [0, 4, 6], [4, 12, 9]])
