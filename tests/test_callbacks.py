"""Early stopping and reduce-LR-on-plateau follow their definitions and survive a checkpoint round trip."""

from vision_jax.train_lib import callbacks


def test_early_stopping_after_patience_evaluations_without_improvement():
  stop = callbacks.EarlyStopping("loss", "min", patience=2, min_delta=0.01)
  decisions = [stop.on_eval({"loss": v}) for v in (1.0, 0.8, 0.795, 0.9, 0.7)]
  # 0.795 is not an improvement by more than min_delta; 0.9 is the second miss -> stop.
  assert decisions == [False, False, False, True, False]


def test_reduce_lr_on_plateau_scales_and_floors():
  reduce = callbacks.ReduceLROnPlateau("accuracy", "max", patience=1, factor=0.5, min_scale=0.2)
  scale = 1.0
  scales = []
  for accuracy in (0.5, 0.6, 0.6, 0.55, 0.59, 0.58, 0.7):
    scale = reduce.on_eval({"accuracy": accuracy}, scale)
    scales.append(scale)
  assert scales == [1.0, 1.0, 0.5, 0.25, 0.2, 0.2, 0.2]


def test_tracker_state_round_trip():
  first = callbacks.EarlyStopping("loss", "min", patience=3)
  for v in (1.0, 1.2):
    first.on_eval({"loss": v})
  second = callbacks.EarlyStopping("loss", "min", patience=3)
  second.tracker.load(first.tracker.state())
  assert (second.tracker.best, second.tracker.waited) == (1.0, 1)
  assert [second.on_eval({"loss": 1.1}), second.on_eval({"loss": 1.1})] == [False, True]
