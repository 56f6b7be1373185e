"""`formats.load` sources read through grain and the project's pipeline."""

import grain
import numpy as np

from tests.data.formats import writers
from vision_jax.data import formats, pipeline


def test_detection_source_reads_through_grain(tmp_path):
  writers.write_voc(str(tmp_path))
  source, spec = formats.load("voc", str(tmp_path), "train", max_objects=3)
  dataset = grain.MapDataset.source(source).map(lambda e: {k: e[k] for k in ("boxes", "box_labels")})
  for n, scene in enumerate(writers.SCENES):
    boxes, labels = writers.expected_objects(scene, 3)
    np.testing.assert_array_equal(dataset[n]["boxes"], boxes)
    np.testing.assert_array_equal(dataset[n]["box_labels"], labels)
  assert set(spec.extra_features) == {"boxes", "box_labels", "num_objects", "difficult"}


def test_folder_source_feeds_the_eval_pipeline(tmp_path):
  for n in range(5):
    writers.write_image(str(tmp_path / ("cat" if n < 3 else "dog") / f"{n}.png"), writers.random_image(6, 4, n))
  source, spec = formats.load("folder", str(tmp_path), "all")
  batches = list(pipeline.iterate(pipeline.eval_dataset(source, spec, global_batch_size=4)))
  images = np.concatenate([b["image"][b["mask"]] for b in batches])
  labels = np.concatenate([b["label"][b["mask"]] for b in batches])
  np.testing.assert_array_equal(images, np.stack([writers.random_image(6, 4, n) for n in range(5)]))
  np.testing.assert_array_equal(labels, [0, 0, 0, 1, 1])
