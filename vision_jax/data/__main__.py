"""`python -m vision_jax.data show NAME [--split=train] [--n=16] [--out=grid.png] [--data_dir=DIR]`: draws the
first examples of a dataset with their boxes, masks and keypoints to a PNG grid and prints its feature table
and counts (`show.py`). A mistake (unknown dataset or split) is one `error:` line and exit status 2."""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from vision_jax.errors import UserError


def main(argv: Optional[Sequence[str]] = None) -> int:
  """Command-line entry; returns the exit status."""
  parser = argparse.ArgumentParser(prog="python -m vision_jax.data", description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True)
  show_parser = commands.add_parser("show", help="draw examples of a dataset and print its features and counts")
  show_parser.add_argument("name", help="dataset name, e.g. digit_scenes, mnist_embedded")
  show_parser.add_argument("--split", default="train")
  show_parser.add_argument("--n", type=int, default=16, help="examples to draw")
  show_parser.add_argument("--out", default="grid.png", help="PNG path")
  show_parser.add_argument("--data_dir", default="", help="TFDS data directory (default $TFDS_DATA_DIR)")
  args = parser.parse_args(argv)
  from vision_jax.data import show  # pylint: disable=import-outside-toplevel  # after parsing: --help stays fast
  try:
    print(show.show(args.name, args.split, args.n, args.out, args.data_dir or None))
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
