"""One measurement in a fresh process; prints one JSON line. Used by `python -m vision_jax.bench`.

    python -m vision_jax.bench.worker --framework=ours --model=resnet18_cifar --batch=128 --resolution=32
"""

from __future__ import annotations

import argparse
import json
import sys


def main(argv: list[str] | None = None) -> None:
  parser = argparse.ArgumentParser(description=__doc__)
  parser.add_argument("--framework", choices=("ours", "torch", "keras", "pipeline", "scenes_pipeline", "family"), required=True)
  parser.add_argument("--model", default="")
  parser.add_argument("--family", default="", help="with --framework=family: a key of bench.families.FAMILIES")
  parser.add_argument("--peer", default="ours", help="with --framework=family: ours | torch")
  parser.add_argument("--batch", type=int, default=0)
  parser.add_argument("--resolution", type=int, default=32)
  parser.add_argument("--channels", type=int, default=3)
  parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32")
  parser.add_argument("--steps", type=int, default=10)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--no_tuning", action="store_true", help="ours without the XLA:CPU fixes")
  args = parser.parse_args(argv)
  shape = dict(model=args.model, batch=args.batch, resolution=args.resolution, channels=args.channels,
               dtype=args.dtype, steps=args.steps, warmup=args.warmup)
  if args.framework == "family":
    from vision_jax.bench import families  # pylint: disable=g-import-not-at-top
    result = families.measure(args.family, args.peer, args.steps)
  elif args.framework == "ours":
    from vision_jax.bench import ours  # pylint: disable=g-import-not-at-top
    result = ours.bench_model(tuned=not args.no_tuning, **shape)
  elif args.framework == "pipeline":
    from vision_jax.bench import ours  # pylint: disable=g-import-not-at-top
    result = ours.bench_pipeline(args.batch, args.steps)
  elif args.framework == "scenes_pipeline":  # detection input: digit_scenes, letterbox, box-aware augmentation
    from vision_jax.data import datasets, throughput  # pylint: disable=g-import-not-at-top
    source, spec = datasets.load("digit_scenes", "train")
    result = throughput.pipeline_throughput(source, spec, batch_size=args.batch, steps=args.steps,
                                            image_size=args.resolution)
  elif args.framework == "torch":
    from vision_jax.bench import peer_torch  # pylint: disable=g-import-not-at-top
    result = peer_torch.bench_model(**shape)
  else:
    from vision_jax.bench import peer_keras  # pylint: disable=g-import-not-at-top
    result = peer_keras.bench_model(**shape)
  sys.stdout.write("BENCH_RESULT " + json.dumps(result) + "\n")


if __name__ == "__main__":
  main()
