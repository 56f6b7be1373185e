"""The localisation network's heads and the sliding-window classifier's convolutional form."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.models.detectors import localization as loc_model
from vision_jax.models.detectors import sliding_window as sw


@pytest.fixture(scope="module")
def window_params():
  model = sw.WindowClassifier(num_classes=3, widths=(4, 6), hidden=8)
  return model, model.init(jax.random.PRNGKey(0), jnp.zeros((1, sw.WINDOW, sw.WINDOW, 1)))["params"]


def test_convolutional_form_equals_classifier_on_each_crop(window_params):
  model, params = window_params
  images = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (1, 40, 48, 1)))
  conv = sw.ConvolutionalWindowNet(num_classes=3, widths=(4, 6), hidden=8).apply(
      {"params": sw.to_convolutional(params)}, jnp.asarray(images))
  rows, cols = conv["logits"].shape[1:3]
  assert (rows, cols) == ((40 - 28) // 4 + 1, (48 - 28) // 4 + 1) == (4, 6)
  # Crops cut by NumPy slicing, one classifier call per crop (the crop loop).
  classify = jax.jit(model.apply)
  for n in range(1):
    for i in range(rows):
      for j in range(cols):
        crop = images[n:n + 1, 4 * i:4 * i + 28, 4 * j:4 * j + 28]
        single = classify({"params": params}, jnp.asarray(crop))
        np.testing.assert_allclose(conv["logits"][n, i, j], single["logits"][0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(conv["box"][n, i, j], single["box"][0], rtol=1e-4, atol=1e-5)


def test_crops_at_stride_cuts_the_windows():
  images = np.arange(2 * 36 * 32, dtype=np.float32).reshape(2, 36, 32, 1)
  crops = np.asarray(sw.crops_at_stride(jnp.asarray(images)))
  assert crops.shape == (2, 3, 2, 28, 28, 1)
  np.testing.assert_array_equal(crops[1, 2, 1], images[1, 8:36, 4:32])


def test_box_code_hand_values_and_round_trip():
  window = np.array([[10.0, 20.0, 30.0, 40.0]])  # centre (20, 30), side 20
  box = np.array([[15.0, 22.0, 35.0, 32.0]])  # centre (25, 27), w 20, h 10
  codes = np.asarray(sw.encode_boxes(jnp.asarray(box), jnp.asarray(window)))
  np.testing.assert_allclose(codes, [[0.25, -0.15, 0.0, np.log(0.5)]], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(sw.decode_boxes(jnp.asarray(codes), jnp.asarray(window)), box, rtol=1e-5)


def test_localization_net_outputs():
  model = loc_model.build("lenet5_relu", num_classes=10, num_keypoints=4, feature_dim=16)
  variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
  out = model.apply(variables, jnp.ones((3, 28, 28, 1)))
  assert out["logits"].shape == (3, 10) and out["boxes"].shape == (3, 4)
  assert out["keypoints"].shape == (3, 4, 2) and out["visibility"].shape == (3, 4)
  assert np.all(out["boxes"][:, 2:] >= out["boxes"][:, :2])
  # Raw zeros decode to the centred half-size box.
  np.testing.assert_allclose(loc_model.decode_boxes(jnp.zeros((1, 4))), [[0.25, 0.25, 0.75, 0.75]])


def test_crop_squares_hand_values():
  rows, cols = np.mgrid[0:64, 0:64].astype(np.float32)
  images = jnp.asarray((cols + 100 * rows)[None, :, :, None])  # linear, so bilinear samples are exact
  box = jnp.array([[20.0, 24.0, 30.0, 40.0]]) / 64  # longer side 16 px, centre (25, 32)
  crops = np.asarray(loc_model.crop_squares(images, box, size=10, margin=1.25))[0, :, :, 0]
  # Square [15, 22, 35, 42] (side 20), 10 bins of 2 px; aligned RoIAlign averages samples around bin centres
  # (start - 0.5 + (k + 0.5) * 2) in pixel-index coordinates.
  centres = np.arange(10) * 2 + 1.0 - 0.5
  np.testing.assert_allclose(crops, (15 + centres)[None, :] + 100 * (22 + centres)[:, None], rtol=1e-5)


def test_crop_classifier_reads_the_given_boxes_without_box_gradient():
  model = loc_model.build("conv4", num_classes=3, feature_dim=8, backbone_config={"kwargs": {"widths": (4,)}},
                          crop_model="conv4", crop_kwargs={"widths": (4,)}, crop_size=4)
  images = jax.random.normal(jax.random.PRNGKey(0), (2, 16, 16, 1))
  variables = model.init(jax.random.PRNGKey(1), images)
  assert "class_head" not in variables["params"] and "crop_classifier" in variables["params"]
  given = jnp.array([[0.1, 0.1, 0.5, 0.6], [0.4, 0.3, 0.9, 0.8]])

  @jax.jit
  def run(variables):
    logits_sum = lambda p: jnp.sum(model.apply({**variables, "params": p}, images)["logits"])
    return model.apply(variables, images), model.apply(variables, images, given), jax.grad(logits_sum)(
        variables["params"])

  predicted, chosen, grads = jax.device_get(run(variables))
  np.testing.assert_allclose(chosen["boxes"], predicted["boxes"])  # the box head ignores the crop boxes
  assert not np.allclose(chosen["logits"], predicted["logits"])
  # Logits from predicted-box crops carry no gradient into the box head (the crop boxes are stopped).
  assert np.all(grads["box_head"]["kernel"] == 0) and np.any(grads["crop_classifier"]["head"]["kernel"] != 0)
