"""Transfer learning on the embedded digits: pretrain LeNet-5 on 0-4, transfer to 5-9 with 50 labels per class.

    python -m vision_jax.main --config=configs/transfer_digits.py:regime=pretrain --workdir=runs/transfer_pretrain
    python -m vision_jax.main --config=configs/transfer_digits.py:regime=head --workdir=runs/transfer_head
    python -m vision_jax.main --config=configs/transfer_digits.py:regime=partial --workdir=runs/transfer_partial
    python -m vision_jax.main --config=configs/transfer_digits.py:regime=finetune --workdir=runs/transfer_finetune
    python -m vision_jax.main --config=configs/transfer_digits.py:regime=scratch --workdir=runs/transfer_scratch

Regimes (`vision_jax.train_lib.transfer`):
  pretrain  ReLU LeNet-5 on every training digit 0-4 (4,088 examples), 5 classes.
  scratch   the same network trained from random weights on 50 training examples of each digit 5-9.
  head      pretrained features frozen; only a new `logits` layer is trained.
  partial   conv1 and conv2 frozen; conv3, fc4 and a new `logits` layer are trained.
  finetune  every layer trained from the pretrained weights, the backbone at 1/10 of the head's learning rate.
Every regime but pretrain trains for the same number of steps on the same 250 examples and is evaluated on
every test digit 5-9 (957 examples). The pretrained head is replaced even though the class count (5) is
unchanged: its classes were other digits.

Arguments (`:key=value,...`): regime, pretrained (the pretrain workdir), per_class, steps and lr (0: the
regime's default), smoke.
"""

from vision_jax.configs import common, mnist_lenet
from vision_jax.errors import ConfigError

REGIMES = ("pretrain", "scratch", "head", "partial", "finetune")
# Per regime: training steps and learning rate. The four 5-9 regimes share one step budget (60 epochs of 5
# batches of 50); a frozen backbone tolerates a larger head learning rate.
_DEFAULTS = {"pretrain": (480, 3e-3), "scratch": (300, 3e-3), "head": (300, 1e-2), "partial": (300, 3e-3),
             "finetune": (300, 3e-3)}


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, regime="head", pretrained="runs/transfer_pretrain", per_class=50, steps=0, lr=0.0,
                          smoke=False)
  if args.regime not in REGIMES:
    raise ConfigError(f"regime={args.regime!r} is unknown; use one of {', '.join(REGIMES)}")
  steps, lr = _DEFAULTS[args.regime]
  config = mnist_lenet.get_config(f"model=lenet5_relu,lr={args.lr or lr}")
  config.num_train_steps = args.steps or steps
  config.schedule.warmup_steps = config.num_train_steps // 10
  config.log_every_steps = 25
  if args.regime == "pretrain":
    config.dataset.classes = "0,1,2,3,4"
    config.eval_every_steps = config.checkpoint.every_steps = 160
  else:
    config.dataset.classes = "5,6,7,8,9"
    config.dataset.examples_per_class = args.per_class
    config.input.batch_size = 50
    config.eval_every_steps = config.checkpoint.every_steps = 50
  t = config.transfer
  if args.regime in ("head", "partial", "finetune"):
    t.init_from = args.pretrained
    t.head = "^logits/"  # same class count, other classes: always a new head
  if args.regime == "head":
    t.trainable = "^logits/"
  elif args.regime == "partial":
    t.freeze = "^(conv1|conv2)/"
  elif args.regime == "finetune":
    t.backbone_lr_factor = 0.1
  if args.smoke:
    common.apply_smoke(config)
  return config
