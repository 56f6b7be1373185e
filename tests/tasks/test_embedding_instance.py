"""The embedding task's instance-discrimination options: nt_xent / supcon losses and the added instance term against
the NumPy loop of tests/losses/test_nt_xent.py, the two-view train step against that loop on the model's own outputs,
`eval_features=backbone` / `conv` against the head's and the hidden linear layer applied by hand, and the config
errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tests.losses.test_nt_xent import ref_nt_xent
from tests.tasks import in_process
from tests.tasks.test_embedding_task import _task
from vision_jax.errors import ConfigError
from vision_jax.losses import metric as L
from vision_jax.train_lib import setup as setup_lib


@pytest.fixture(scope="module")
def views():
  rng = np.random.default_rng(0)
  embeddings = rng.normal(size=(12, 5)).astype(np.float32)  # two views of 6 images
  labels = np.tile([0, 0, 1, 1, 2, 2], 2)
  micro = {"labels": jnp.asarray(labels), "trained": jnp.ones(12, bool), "instance_ids": jnp.tile(jnp.arange(6), 2)}
  return embeddings, labels, micro


def test_view_losses_and_instance_term_match_the_loop(views):
  embeddings, labels, micro = views
  ids = np.tile(np.arange(6), 2)
  loss, _ = _task("nt_xent", "balanced", temperature=0.3).batch_loss(jnp.asarray(embeddings), micro)
  assert abs(float(loss) - ref_nt_xent(embeddings, ids, 0.3)) < 1e-4
  loss, _ = _task("supcon", "balanced", temperature=0.3).batch_loss(jnp.asarray(embeddings), micro)
  assert abs(float(loss) - ref_nt_xent(embeddings, labels, 0.3)) < 1e-4
  combined = _task("batch_all", "balanced", instance_weight=0.5, temperature=0.3)
  loss, metrics = combined.batch_loss(jnp.asarray(embeddings), micro)
  triplets, _ = L.batch_all_triplet_loss(jnp.asarray(embeddings), jnp.asarray(labels), 0.2)
  assert abs(float(metrics["instance_loss"]) - ref_nt_xent(embeddings, ids, 0.3)) < 1e-4
  assert abs(float(loss) - float(triplets) - 0.5 * ref_nt_xent(embeddings, ids, 0.3)) < 1e-4


@pytest.mark.parametrize("section,sampler,fix", [({"eval_features": "logits"}, "balanced", "use head"),
                                                 ({"temperature": 0.0}, "balanced", "must be > 0"),
                                                 ({"eval_metric": "l1"}, "balanced", "or '' (the training metric)"),
                                                 ({"instance_weight": 1.0}, "pairs", "input.sampler=balanced"),
                                                 ({"eval_features": "backbone"}, "pairs", "use eval_features=head")])
def test_config_errors_name_the_fix(section, sampler, fix):
  loss = "pair_bce" if section.get("eval_features") == "backbone" else "batch_all"
  if sampler == "pairs" and loss == "batch_all":
    loss = "contrastive"
  with pytest.raises(ConfigError) as error:
    _task(loss, sampler, **section)
  assert fix in str(error.value) and "\n" not in str(error.value)


def test_eval_metric_overrides_the_training_metric_for_evaluation_only():
  task = _task("batch_all", "balanced", "eval_metric=cosine,", metric="euclidean")
  assert task.eval_settings.metric == "cosine" and task.settings.metric == "euclidean"
  assert _task("batch_all", "balanced", metric="squared_euclidean").eval_settings.metric == "squared_euclidean"


def test_backbone_and_conv_features_are_the_inputs_of_the_linear_layers():
  task = _task("batch_all", "balanced", "model=lenet5_relu,bn=false,", eval_features="backbone", normalize=False)
  images = jnp.asarray(np.random.default_rng(1).integers(0, 256, (3, 28, 28, 1)), jnp.uint8)
  variables = jax.jit(task.model.init)(jax.random.key(0), jnp.zeros((1,) + task.input_shape()))
  features = np.asarray(jax.jit(task.embed)(variables, images), np.float64)
  assert features.shape == (3, 84)  # LeNet-5's last hidden layer
  head = variables["params"]["backbone"]["logits"]  # LeNet-5's last layer, the embedding head
  prepared = task.input_ops(jax.random.key(0), images, train=False)
  embeddings = jax.jit(lambda v, x: task.model.apply(v, x, train=False))(variables, prepared)
  expected = features @ np.asarray(head["kernel"], np.float64) + np.asarray(head["bias"], np.float64)
  np.testing.assert_allclose(np.asarray(embeddings), expected, atol=1e-4)
  # conv: the input of the first linear layer, LeNet-5's 120 conv3 maps; fc4 + ReLU by hand gives the 84 above.
  task.settings.eval_features = "conv"
  conv = np.asarray(jax.jit(task.embed)(variables, images), np.float64)
  fc4 = variables["params"]["backbone"]["fc4"]
  assert conv.shape == (3, 120)
  np.testing.assert_allclose(np.maximum(conv @ np.asarray(fc4["kernel"], np.float64) + np.asarray(fc4["bias"]), 0),
                             features, atol=1e-4)


@pytest.mark.slow  # compiles a train step: ~10 s
def test_two_view_train_step_feeds_both_views_to_the_loss(data_dir, tmp_path):
  config = in_process.load_config("configs/siamese_digits.py:loss=supcon,model=lenet5_relu,bn=false,augment=none,"
                                  "transforms=0,smoke", data_dir, input__batch_size=8, input__examples_per_class=2,
                                  embedding__instance_weight=0.5)
  s = setup_lib.setup(config, str(tmp_path))
  batch = next(in_process.train_batches(s))
  state = s.init_state()
  variables = in_process.host_copy(state.variables("model"))
  _, metrics = in_process.compile_train_step(s)(state, batch)
  prepared = s.task.input_ops(jax.random.key(0), batch["image"], train=True)  # no augmentation: views are equal
  outputs = np.asarray(s.task.model.apply(variables, jnp.concatenate([prepared, prepared]), train=True))
  labels = np.tile(np.asarray(batch["label"]), 2)
  expected_instance = ref_nt_xent(outputs, np.tile(np.arange(8), 2), config.embedding.temperature)
  expected = ref_nt_xent(outputs, labels, config.embedding.temperature) + 0.5 * expected_instance
  assert abs(float(metrics["instance_loss"]) - expected_instance) < 1e-3
  assert abs(float(metrics["loss"]) - expected) < 1e-3
