"""Synthetic glyph classes in the embedding task: the rows a step adds (labels never a real one, pooled or fresh
classes), their place in the loss's batch, config errors, and (slow) one train step through the loop's parts."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tests.tasks import in_process
from vision_jax import tasks
from vision_jax.errors import ConfigError
from vision_jax.tasks.embedding import GLYPH_LABEL_OFFSET
from vision_jax.train_lib import setup as setup_lib
from vision_jax.train_lib.state import TrainState

from tests.tasks.test_embedding_task import SPEC


def _task(args):
  return tasks.get(in_process.load_config(f"configs/siamese_digits.py:{args},smoke"), SPEC)


def test_fresh_and_pooled_glyph_labels():
  task = _task("glyphs=3,k=2")
  images, labels = jax.eval_shape(task.glyph_rows, jax.random.key(0), jnp.int32(5))
  assert images.shape == (6, 28, 28, 1) and labels.shape == (6,)
  ids, labels = task.glyph_classes(jax.random.key(0), jnp.int32(5))
  np.testing.assert_array_equal(np.asarray(ids), [15, 16, 17])  # new classes every step
  np.testing.assert_array_equal(np.asarray(labels), GLYPH_LABEL_OFFSET + np.arange(3))
  assert GLYPH_LABEL_OFFSET > SPEC.num_classes
  pooled = _task("glyphs=3,k=2,pool=4")
  for seed in range(3):
    ids, labels = pooled.glyph_classes(jax.random.key(seed), jnp.int32(0))
    ids = np.asarray(ids)
    assert len(set(ids.tolist())) == 3 and set(ids.tolist()) <= {0, 1, 2, 3}
    np.testing.assert_array_equal(np.asarray(labels), GLYPH_LABEL_OFFSET + ids)


def test_glyph_rows_join_the_loss_batch(monkeypatch):
  # The loss sees the real rows, then N x K glyph rows, all trained, labels from the offset up (traced shapes only).
  task = _task("glyphs=3,k=2")
  seen = {}

  def spy(outputs, micro):
    seen.update(outputs=outputs.shape, labels=micro["labels"].shape, trained=micro["trained"].dtype)
    return jnp.sum(outputs) * 0.0, {}
  monkeypatch.setattr(task, "batch_loss", spy)
  model = task.networks()["model"]
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), *task.example_inputs("model"), train=False))
  tx = optax.sgd(0.1)
  state = jax.eval_shape(lambda v: TrainState.create({"model": v}, {"model": tx}, jax.random.key(0)), variables)
  batch = {"image": jax.ShapeDtypeStruct((8, 28, 28, 1), jnp.uint8), "label": jax.ShapeDtypeStruct((8,), jnp.int32)}
  jax.eval_shape(lambda s, b: task.train_step(s, b, {"model": tx}), state, batch)
  assert seen["labels"] == (8 + 6,) and seen["outputs"][0] == 14 and seen["trained"] == jnp.bool_


@pytest.mark.parametrize("args,fix", [("glyphs=4,pool=2", "glyph_pool"), ("glyphs=2,loss=pair_bce", "sampler=balanced"),
                                      ("glyphs=-1", "must be >= 0")])
def test_glyph_config_errors_name_the_fix(args, fix):
  with pytest.raises(ConfigError) as error:
    _task(args)
  assert fix in str(error.value) and "\n" not in str(error.value)


@pytest.mark.slow
def test_train_step_with_glyphs_through_the_loop(data_dir, tmp_path):
  config = in_process.load_config("configs/siamese_digits.py:loss=semi_hard,glyphs=4,k=2,smoke", data_dir,
                                  input__batch_size=8, dataset__eval_split="test[:100]", embedding__num_episodes=10)
  s = setup_lib.setup(config, str(tmp_path))
  batch = next(in_process.train_batches(s))
  state, metrics = in_process.compile_train_step(s)(s.init_state(), batch)
  assert np.isfinite(float(metrics["loss"])) and float(metrics["loss"]) > 0
  paths = s.task.write_reports(str(tmp_path), {}, {})
  assert [p.rsplit("/", 1)[1] for p in paths] == ["glyphs.png"]
