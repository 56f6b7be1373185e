"""`setup` with `dataset.train_split2` / `eval_split2`: the task sees `image2` in its spec, training batches
carry the second split's images drawn from its own seeded epochs, evaluation batches its images in order with
`mask2`."""

import numpy as np

from tests.tasks import in_process
from vision_jax.data import datasets, pipeline, samplers
from vision_jax.train_lib import setup as setup_lib

SPLITS = dict(dataset__name="mnist_embedded", dataset__train_split="train[:40]",
              dataset__train_split2="train[40:100]", dataset__eval_split="test[:20]",
              dataset__eval_split2="test[20:50]", input__batch_size=8, input__eval_batch_size=16)


def _images(split: str, count: int) -> np.ndarray:
  source, _ = datasets.load("mnist_embedded", split)
  return np.stack([np.asarray(source[i]["image"]) for i in range(count)])


def test_second_split_reaches_the_task_and_the_batches(tmp_path):
  config = in_process.load_config("configs/gan_horse2zebra.py:smoke", input__image_size=0, **SPLITS)  # no resizing
  s = setup_lib.setup(config, str(tmp_path))
  assert "image2" in s.task.spec.extra_features
  assert (s.train_second[1].num_examples, s.eval_second[1].num_examples) == (60, 30)

  local, _ = setup_lib.train_batches(s)
  batch = next(iter(local))
  drawn = samplers.Uniform().draw(pipeline.second_split_seed(config.seed), 0, 8, samplers.ClassIndex(60))["index"]
  np.testing.assert_array_equal(np.asarray(batch["image2"]), _images("train[40:100]", 60)[drawn])

  batches = list(setup_lib.eval_batches(s))
  assert [int(np.asarray(b["mask2"]).sum()) for b in batches] == [16, 14]
  assert [int(np.asarray(b["mask"]).sum()) for b in batches] == [16, 4]
  np.testing.assert_array_equal(np.asarray(batches[1]["image2"])[:14], _images("test[20:50]", 30)[16:])
