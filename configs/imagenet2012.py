"""Any ImageNet classifier of the zoo on ILSVRC-2012 (TFDS `imagenet2012`, prepared as array_record).

    python -m vision_jax.main --config=configs/imagenet2012.py:model=resnet50 --workdir=runs/resnet50_in1k
    python -m vision_jax.main --config=configs/imagenet2012.py:model=inception_v3,batch=512 ...

Arguments (`:key=value,...`): model, epochs, batch, lr, aux (googlenet and inception_v3 train with their
auxiliary heads, loss + 0.3 x each head's loss, as in the papers), smoke. The recipe is the common one for ResNets (SGD
with Nesterov momentum 0.9, weight decay 1e-4, linear-scaled learning rate 0.1 x batch / 256, 5 warm-up epochs
then cosine, label smoothing 0.1); other families usually train longer or with RMSProp, override what you need
with --config.a.b=value. Images are resized on the host (shorter side to the model's crop size / 0.875, centre
crop) and flipped and padded-cropped on device.
"""

from vision_jax.configs import common
from vision_jax.errors import ConfigError

# Input resolution each architecture was designed for.
IMAGE_SIZE = {"inception_v3": 299, "keras_inception_v3": 299, "xception": 299}
MEAN_RGB, STD_RGB = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
AUX_HEAD_MODELS = ("googlenet", "inception_v3")  # models with an `aux_logits` switch


def set_aux_heads(config, aux: bool) -> None:
  """Turns the auxiliary heads of `config.model.name` on or off; ConfigError for `aux` on a model without any."""
  if config.model.name in AUX_HEAD_MODELS:
    config.model.kwargs.aux_logits = aux
  elif aux:
    raise ConfigError(f"model {config.model.name!r} has no auxiliary heads; aux applies to "
                      f"{', '.join(AUX_HEAD_MODELS)}")


def get_config(arg: str | None = None):
  """Returns the experiment config; see the module docstring for `arg`."""
  args = common.parse_arg(arg, model="resnet50", epochs=90, batch=256, lr=0.0, aux=False, smoke=False)
  size = IMAGE_SIZE.get(args.model, 224)
  config = common.base_config()
  config.model.name = args.model
  set_aux_heads(config, args.aux)
  config.dataset.name = "imagenet2012"
  config.dataset.eval_split = "validation"
  config.num_epochs = args.epochs
  config.input.batch_size = args.batch
  config.input.eval_batch_size = 256
  config.input.image_size = size
  config.input.preprocess = "to_float"
  config.input.augment = f"pad_crop(pad={size // 16})|flip_lr"
  config.input.normalize = f"normalize(mean={MEAN_RGB}, std={STD_RGB})"
  config.input.num_threads = 16
  config.optimizer.name = "sgd"
  config.optimizer.momentum = 0.9
  config.optimizer.nesterov = True
  config.optimizer.weight_decay = 1e-4
  config.optimizer.learning_rate = args.lr or 0.1 * args.batch / 256
  config.schedule.name = "warmup_cosine"
  config.schedule.warmup_steps = 5 * 1_281_167 // args.batch
  config.loss.label_smoothing = 0.1
  config.log_every_steps = 100
  config.checkpoint.every_steps = 2000
  if args.smoke:
    common.apply_smoke(config)
  return config
