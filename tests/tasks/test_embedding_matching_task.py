"""The embedding task's evaluation wiring for joined layers, local matching, support views and the power transform
(configs/siamese_digits.py args)."""

import types

import jax
import numpy as np
import pytest

from tests.tasks import in_process
from vision_jax import tasks
from vision_jax.data.features import Feature, make_spec
from vision_jax.errors import ConfigError
from vision_jax.models import embedding as embedding_models

SPEC = make_spec("toy", "train", 100, {"image": Feature("image", (28, 28, 1), "uint8"),
                                       "label": Feature("label", (), "int32", 10, tuple("0123456789"))})


@pytest.mark.slow  # ~5 s quiet, 13 s on a loaded machine: builds and runs simple_cnn
@pytest.mark.parametrize("power", [1.0, 0.5])
def test_eval_step_gives_joined_layers_and_the_conv_maps_of_simple_cnn(power):
  config = in_process.load_config("configs/siamese_digits.py:features=conv+backbone,match=local,radius=0,views=2,"
                                  f"power={power},smoke", "")
  task = tasks.get(config, SPEC)
  model_variables = task.init_variables(jax.random.PRNGKey(0))["model"]
  state = types.SimpleNamespace(variables=lambda name: model_variables)  # what eval_step reads of a TrainState
  images = np.random.default_rng(0).integers(0, 256, (3, 28, 28, 1)).astype(np.uint8)
  batch = {"image": images, "label": np.arange(3, dtype=np.int32), "mask": np.ones(3, bool)}
  out = task.eval_step(state, batch)
  assert out["maps"].shape == (3, 5, 5, 64)  # simple_cnn: 28 -> 26 -> 13 -> 11 -> 5 after two pools
  prepared = task.input_ops(jax.random.PRNGKey(0), images, train=False)
  conv, backbone = (np.asarray(task.model.apply(model_variables, prepared, layer=layer,
                                                method=embedding_models.EmbeddingNet.features)) ** power
                    for layer in ("first", "last"))  # non-negative (ReLU) features: sign(x) |x|^p = x^p
  np.testing.assert_allclose(np.asarray(out["maps"]).reshape(3, -1), conv, rtol=1e-5, atol=1e-5)
  viewed = np.asarray(task.model.apply(model_variables, task.view_inputs(images, 1), layer="first",
                                       method=embedding_models.EmbeddingNet.features)) ** power
  np.testing.assert_allclose(np.asarray(out["view_maps"])[:, 0].reshape(3, -1), viewed, rtol=1e-5, atol=1e-5)
  unit = [b / np.linalg.norm(b, axis=1, keepdims=True) / np.sqrt(2) for b in (conv, backbone)]
  np.testing.assert_allclose(np.asarray(out["embedding"]), np.concatenate(unit, 1), rtol=1e-4, atol=1e-6)
  assert "maps" in task.evaluators()[0].keys


@pytest.mark.parametrize("args,fix", [("match=nearest", "embedding.match"), ("radius=-1", "embedding.radius"),
                                      ("features=conv+pixels", r"conv\+backbone"),
                                      ("loss=pair_bce,match=local", "match=prototype"),
                                      ("power=0", "embedding.feature_power=0.0 must be > 0"),
                                      ("loss=pair_bce,power=0.5", "leave feature_power at 1")])
def test_matching_config_errors_name_the_fix(args, fix):
  with pytest.raises(ConfigError, match=fix) as error:
    config = in_process.load_config(f"configs/siamese_digits.py:{args},smoke", "")
    tasks.get(config, SPEC)
  assert "\n" not in str(error.value)
