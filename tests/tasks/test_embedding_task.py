"""The embedding task: held-out rows masked out of every loss (against the losses on the kept rows only), config
errors, a pairs train step and a balanced train step through the loop's parts, and the held-out evaluation."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from tests.losses.test_prototypical_loss import ref_prototypical
from tests.tasks import in_process
from vision_jax import tasks
from vision_jax.tasks import base
from vision_jax.data import datasets
from vision_jax.data.features import Feature, make_spec
from vision_jax.errors import ConfigError
from vision_jax.losses import metric as L
from vision_jax.train_lib import setup as setup_lib

SPEC = make_spec("toy", "train", 100, {"image": Feature("image", (28, 28, 1), "uint8"),
                                       "label": Feature("label", (), "int32", 10, tuple("0123456789"))})
HELD_OUT = (5, 6, 7, 8, 9)


def _task(loss, sampler, args="", **section):
  """The task of the smoke config with extra config `args` ("key=value," each) and `embedding` section values."""
  config = in_process.load_config(f"configs/siamese_digits.py:{args}smoke", "", embedding__loss=loss,
                                  input__sampler=sampler)
  section.setdefault("heldout_classes", ",".join(map(str, HELD_OUT)))  # masking inside training batches
  section.setdefault("class_transforms", 0)
  for key, value in section.items():
    config.embedding[key] = value
  return tasks.get(config, SPEC)


@pytest.fixture(scope="module")
def batch():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(10), 3)
  embeddings = rng.normal(size=(30, 6)).astype(np.float32)
  return jnp.asarray(embeddings), jnp.asarray(labels, jnp.int32)


@pytest.mark.parametrize("loss,reference", [
    ("batch_hard", lambda e, y, m: L.batch_hard_triplet_loss(e, y, m)),
    ("soft_margin", lambda e, y, m: L.batch_hard_triplet_loss(e, y, m, soft=True)),
    ("batch_all", lambda e, y, m: L.batch_all_triplet_loss(e, y, m)[0]),
    ("semi_hard", lambda e, y, m: L.semi_hard_triplet_loss(e, y, m)),
    ("contrastive", lambda e, y, m: L.batch_contrastive_loss(e, y, m))])
def test_held_out_rows_take_no_part_in_the_loss(batch, loss, reference):
  embeddings, labels = batch
  task = _task(loss, "balanced")
  assert task.heldout == HELD_OUT
  trained = task._trained_rows(labels)  # pylint: disable=protected-access
  ours, metrics = task.batch_loss(embeddings, {"labels": labels, "trained": trained})
  kept = np.asarray(labels) < 5
  expected = reference(embeddings[kept], labels[kept], task.settings.margin)
  assert abs(float(ours) - float(expected)) < 1e-5
  # Monitoring: mean distances of same- and different-class pairs among the kept rows (NumPy float64).
  e, y = np.asarray(embeddings, np.float64)[kept], np.asarray(labels)[kept]
  d = np.sqrt(((e[:, None] - e[None]) ** 2).sum(-1))
  same, off_diagonal = y[:, None] == y[None], ~np.eye(len(y), dtype=bool)
  assert abs(float(metrics["positive_distance"]) - d[same & off_diagonal].mean()) < 1e-4
  assert abs(float(metrics["negative_distance"]) - d[~same].mean()) < 1e-4


def test_pair_losses_mask_pairs_with_a_held_out_side(batch):
  embeddings, labels = batch
  first, second = embeddings[:15], embeddings[15:]
  labels2 = jnp.asarray([0, 1, 0, 5, 1, 2, 2, 7, 3, 4, 4, 9, 1, 3, 6], jnp.int32)  # labels[:15] is 0,0,0,1,1,1,...
  same = labels[:15] == labels2
  micro = {"labels": labels[:15], "same": same.astype(jnp.int32), "trained": labels[:15] < 5,
           "trained2": labels2 < 5}
  task = _task("contrastive", "pairs")
  ours, _ = task.batch_loss(jnp.concatenate([first, second]), micro)
  kept = np.asarray((labels[:15] < 5) & (labels2 < 5))
  d = np.sqrt(((np.asarray(first, np.float64) - np.asarray(second, np.float64)) ** 2).sum(-1))
  y, m = np.asarray(same, np.float64), task.settings.margin
  expected = (y * d ** 2 + (1 - y) * np.maximum(m - d, 0) ** 2)[kept].mean()
  assert 0 < kept.sum() < 15 and abs(float(ours) - expected) < 1e-5
  logits = jnp.linspace(-2.0, 2.0, 15)
  bce, _ = _task("pair_bce", "pairs", eval_features="head").batch_loss(logits, micro)
  z = np.asarray(logits, np.float64)
  expected_bce = (np.logaddexp(0, z) - y * z)[kept].mean()
  assert abs(float(bce) - expected_bce) < 1e-5


def test_prototypical_episodes_use_the_configured_group_size(batch):
  embeddings, labels = batch  # ten classes in groups of 3 rows
  task = _task("prototypical", "balanced", heldout_classes="", scale=2.0, metric="squared_euclidean")
  task.examples_per_class = 3
  ours, metrics = task.batch_loss(embeddings, {"labels": labels, "trained": jnp.ones(labels.shape, bool)})
  expected, accuracy = ref_prototypical(np.asarray(embeddings), np.asarray(labels), 3, "squared_euclidean", 2.0)
  assert abs(float(ours) - expected) < 1e-4 and abs(float(metrics["episode_accuracy"]) - accuracy) < 1e-6


@pytest.mark.parametrize("args,fix", [("augment=blur", "augment='blur'; use one of crop"),
                                      ("head=false", "use model=conv4"),
                                      ("shape=slant", "shape='slant'; use one of deskew, moments"),
                                      ("spread=0.2", "spread=0.2 sets the ink spread of shape=moments; add"),
                                      ("shape=moments,spread=-0.1", "pass the ink's spread as a fraction"),
                                      ("steps=0", "steps=0 trains nothing; pass steps=1 or more"),
                                      ("k=0", "k=0 examples per class; pass k=2 or more"),
                                      ("margin=-1", "embedding.margin=-1.0 must be >= 0"),
                                      ("loss=prototypical,scale=0", "embedding.scale=0.0 (the prototypical"),
                                      ("widths=64", "as A-B, e.g. 64-128"),
                                      ("widths=64-x", "as A-B, e.g. 64-128"),
                                      ("model=conv4,widths=64-128", "drop them or use model=simple_cnn"),
                                      ("hidden=-1", "use a positive count")])
def test_config_argument_errors_name_the_fix(args, fix):
  with pytest.raises(ConfigError) as error:
    tasks.get(in_process.load_config(f"configs/siamese_digits.py:{args},smoke"), SPEC)
  assert fix in str(error.value) and "\n" not in str(error.value)


def test_spread_sets_the_moment_normalisation_ink_spread():
  preprocess = lambda arg: in_process.load_config(f"configs/siamese_digits.py:{arg},smoke").input.preprocess
  assert preprocess("shape=moments,spread=0.22").endswith("moment_norm(spread=0.22, max_stretch=2.0)")
  assert preprocess("shape=moments").endswith("moment_norm(spread=0.16, max_stretch=2.0)")


@pytest.mark.parametrize("shape,op", [("deskew", "deskew"), ("moments", "moment_norm")])
def test_shape_normalisation_joins_the_preprocessing_of_training_and_evaluation(shape, op):
  config = in_process.load_config(f"configs/siamese_digits.py:shape={shape},smoke")
  assert config.input.preprocess.split("|")[0] == "to_float" and config.input.preprocess.split("|")[1].startswith(op)
  ops = base.InputOps(config.input)
  slanted = np.zeros((1, 28, 28, 1), np.uint8)
  for r in range(6, 22):
    slanted[0, r, 10 + (r - 6) // 2:12 + (r - 6) // 2, 0] = 255
  image = np.asarray(ops.preprocess(jax.random.PRNGKey(0), jnp.asarray(slanted)))[0, :, :, 0]  # train and eval
  ys, xs = np.mgrid[:28, :28] + 0.5
  mx, my = (image * xs).sum() / image.sum(), (image * ys).sum() / image.sum()
  slant = (image * (xs - mx) * (ys - my)).sum() / (image * (ys - my) ** 2).sum()
  assert abs(slant) < 0.02 and abs(mx - 14) < 0.05 and abs(my - 14) < 0.05  # no slant left, centred


def test_holes_argument_reaches_the_evaluator_and_bad_weights_fail_before_training():
  assert _task("supcon", "balanced", "holes=0.1,").eval_settings.holes == 0.1
  assert _task("supcon", "balanced").eval_settings.holes == 0.0
  assert _task("supcon", "balanced").eval_settings.hole_descriptor == "binary"
  assert _task("supcon", "balanced", "holes=0.15,hole_descriptor=graded,").eval_settings.hole_descriptor == "graded"
  with pytest.raises(ConfigError, match="embedding.hole_descriptor='fuzzy'; use one of binary, graded"):
    _task("supcon", "balanced", "holes=0.1,hole_descriptor=fuzzy,")
  with pytest.raises(ConfigError, match="which embedding.holes=0 turns off; set holes > 0"):
    _task("supcon", "balanced", "hole_descriptor=graded,")
  with pytest.raises(ConfigError, match="embedding.holes=-1.0 is a penalty weight"):
    _task("supcon", "balanced", "holes=-1,")


def test_simple_cnn_sizes_reach_the_backbone():
  config = in_process.load_config("configs/siamese_digits.py:widths=48-96,hidden=256,smoke")
  task = tasks.get(config, SPEC)
  params = jax.eval_shape(lambda x: task.model.init(jax.random.key(0), x), jnp.zeros((2,) + task.input_shape()))
  backbone = params["params"]["backbone"]
  assert backbone["conv1"]["kernel"].shape == (3, 3, 1, 48) and backbone["conv4"]["kernel"].shape == (3, 3, 96, 96)
  assert backbone["fc"]["kernel"].shape == (5 * 5 * 96, 256)  # 28 -> 26 -> 13 -> 11 -> 5 after two valid convs
  # by hand: four 3x3 convs, the dense layer, the 64-d head, and batch norm's scale and bias on each layer
  convs = (9 * 1 * 48 + 48) + (9 * 48 * 48 + 48) + (9 * 48 * 96 + 96) + (9 * 96 * 96 + 96)
  expected = convs + (2400 * 256 + 256) + (256 * 64 + 64) + 2 * (48 + 48 + 96 + 96 + 256)
  assert sum(leaf.size for leaf in jax.tree.leaves(params["params"])) == expected == 778_064
  assert "widths" not in in_process.load_config("configs/siamese_digits.py:smoke").model.kwargs


def test_conv4_recipe_config():
  config = in_process.load_config("configs/siamese_digits.py:loss=prototypical,model=conv4,head=false,blocks=3,"
                                  "center=true,metric=cosine,scale=10,augment=affine,smoke")
  assert tuple(config.model.kwargs.widths) == (64, 64, 64) and not config.model.kwargs.head
  assert config.embedding.center and config.embedding.metric == "cosine" and config.embedding.scale == 10.0
  assert config.input.augment.startswith("affine(")
  task = tasks.get(config, SPEC)
  out = jax.eval_shape(lambda x: task.model.init_with_output(jax.random.key(0), x)[0],
                       jnp.zeros((2,) + task.input_shape()))
  assert out.shape == (2, 3 * 3 * 64)  # 28 -> 14 -> 7 -> 3 after three blocks, no head


@pytest.mark.parametrize("loss,sampler,fix", [("batch_hard", "pairs", "input.sampler=balanced"),
                                              ("prototypical", "uniform", "input.sampler=balanced"),
                                              ("pair_bce", "balanced", "input.sampler=pairs"),
                                              ("arcface", "balanced", "use one of"),
                                              ("supcon", "balanced", "refine_steps=-1 must be >= 0")])
def test_config_errors_name_the_fix(loss, sampler, fix):
  args = {"supcon": "refine=-1,"}.get(loss, "")
  with pytest.raises(ConfigError) as error:
    _task(loss, sampler, args)
  assert fix in str(error.value) and "\n" not in str(error.value)


def _one_per_class_task(loss, batch_size):
  """The smoke config's task with P x K batches of K = 1 (`SPEC` has 10 classes)."""
  config = in_process.load_config("configs/siamese_digits.py:k=1,smoke", "", embedding__loss=loss,
                                  input__batch_size=batch_size)
  return tasks.get(config, SPEC)


def test_one_example_per_class_is_an_error_only_where_no_anchor_can_have_a_positive():
  for batch_size in (8, 10):  # P <= 10 classes: the sampler draws P distinct classes
    with pytest.raises(ConfigError) as error:
      _one_per_class_task("semi_hard", batch_size)
    assert "input.examples_per_class=1 hold one image of each class" in str(error.value)
  assert _one_per_class_task("semi_hard", 32).examples_per_class == 1  # 32 groups of 10 classes: classes repeat
  assert _one_per_class_task("nt_xent", 8).examples_per_class == 1  # the second view is the positive


@pytest.fixture(scope="module")
def pairs_setup(data_dir, tmp_path_factory):
  config = in_process.load_config("configs/siamese_digits.py:loss=pair_bce,model=lenet5_relu,bn=false,smoke", data_dir,
                                  input__batch_size=16, dataset__eval_split="test[:200]", embedding__num_episodes=20)
  return setup_lib.setup(config, str(tmp_path_factory.mktemp("pairs")))


def test_pair_classifier_trains_on_pairs_and_evaluates_held_out_classes(pairs_setup, data_dir, tmp_path):
  s = pairs_setup
  batch = next(in_process.train_batches(s))
  assert {"image", "image2", "same", "label", "label2"} <= set(batch)
  assert set(batch["label"].tolist()) | set(batch["label2"].tolist()) <= {0, 1, 2, 3, 4}  # training classes only
  state, metrics = in_process.compile_train_step(s)(s.init_state(), batch)
  assert np.isfinite(float(metrics["loss"]))
  results = setup_lib.run_evaluation(s, setup_lib.compile_eval_step(s), state)
  raw, _ = datasets.load("mnist_embedded", "test[:200]", data_dir)  # dataset.eval_classes keeps only 5-9
  labels = np.asarray([int(raw[i]["label"]) for i in range(200)])
  assert results["num_examples"] == len(s.eval_source) == int(np.isin(labels, HELD_OUT).sum())
  assert results["num_classes"] == 5 and s.task.eval_class_names() == ("5", "6", "7", "8", "9")
  assert 0.0 <= results["verification_auc"] <= 1.0 and np.isfinite(results["episodes_5way_1shot"])
  paths = []
  for i in range(2):
    paths.append(str(tmp_path / f"digit{i}.png"))
    Image.fromarray(np.asarray(s.eval_source[i]["image"])[..., 0]).save(paths[-1])
  lines = s.task.predict(state, paths)
  assert len(lines) == 2 and paths[0] in lines[0] and f"nearest other file {paths[0]}" in lines[1]


def test_class_transforms_need_the_balanced_sampler():
  with pytest.raises(ConfigError, match="input.sampler=balanced"):
    _task("contrastive", "pairs", class_transforms=8)
  with pytest.raises(ConfigError, match="use 0"):
    _task("batch_all", "balanced", class_transforms=3)
