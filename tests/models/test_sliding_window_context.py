"""The sliding-window classifier with a context ring and an IoU output: its convolutional form on the padded image
equals the classifier on each NumPy-sliced context crop (the equivalence of tests/models/test_detector_windows.py,
extended)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vision_jax.models.detectors import sliding_window as sw


def test_convolutional_form_with_context_equals_classifier_on_each_context_crop():
  kwargs = {"num_classes": 3, "widths": (4, 6), "hidden": 8, "context": 4, "iou_output": True}
  model = sw.WindowClassifier(**kwargs)
  params = jax.jit(model.init)(jax.random.PRNGKey(0), jnp.zeros((1, 36, 36, 1)))["params"]
  assert params["fc1"]["kernel"].shape == (7 * 7 * 6, 8)  # 36 -> 32 -> 16 -> 14 -> 7
  image = np.asarray(jax.random.normal(jax.random.PRNGKey(1), (1, 40, 48, 1)))
  padded = np.pad(image, ((0, 0), (4, 4), (4, 4), (0, 0)))
  conv = jax.device_get(sw.ConvolutionalWindowNet(**kwargs).apply({"params": sw.to_convolutional(params)},
                                                                   jnp.asarray(padded)))
  assert conv["logits"].shape == (1, 4, 6, 4) and conv["iou"].shape == (1, 4, 6)  # the windows of the unpadded image
  crops = np.stack([padded[0, 4 * i:4 * i + 36, 4 * j:4 * j + 36] for i in range(4) for j in range(6)])
  single = jax.device_get(jax.jit(model.apply)({"params": params}, jnp.asarray(crops)))
  for key in ("logits", "box", "iou"):
    np.testing.assert_allclose(conv[key][0].reshape(24, -1), single[key].reshape(24, -1), rtol=1e-4, atol=1e-5)


def test_context_must_be_even_and_crops_must_match_it():
  assert sw.crop_size(8) == 44
  with pytest.raises(ValueError, match="even"):
    sw.crop_size(3)
  model = sw.WindowClassifier(num_classes=3, widths=(4, 6), hidden=8, context=8)
  with pytest.raises(ValueError, match="44x44"):
    model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28, 1)))
