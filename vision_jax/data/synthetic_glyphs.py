"""Procedurally generated handwriting-like classes, rendered in pure JAX with static shapes (inside a train step).

A class is a random stroke program (`glyph_program`): 1 to `max_strokes` cubic Bezier strokes with control points in
a unit canvas, some strokes starting where the previous one ended, some closed into a loop, all drawn from the
class's PRNG key. An example of a class (`render_examples`) is that program with its control points jittered
(handwriting variation), a random stroke width and a small random affine map (rotation, shear, aspect), rendered by
the distance of each pixel centre to the nearest segment of the sampled curves (a soft edge one pixel wide), then
laid out by MNIST's conventions: the glyph's box scaled so that its longer side is `box` pixels, and its centre of
mass (of the strokes, by arc length) moved to the centre of the `size` x `size` canvas.

Images come out in the stored range of uint8 images (float32 0..255, white strokes on black), ready for the task's
augmentation and normalisation like a real batch. Pixel coordinates: (x, y) = (column, row) index of a pixel centre.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

CONTROL_POINTS = 4  # cubic Bezier


@dataclasses.dataclass(frozen=True)
class GlyphStyle:
  """How glyph classes are drawn and varied.

  Attributes:
    max_strokes: strokes per class, drawn uniformly in 1..max_strokes.
    join_probability: chance that a stroke starts where the previous one ended.
    loop_probability: chance that a stroke ends where it started (a closed loop).
    jitter: standard deviation of the per-example control-point jitter, as a fraction of the glyph box (0.06 of a
      20-pixel box is 1.2 pixels).
    width: (low, high) stroke width in pixels, drawn per example.
    degrees: rotation drawn in +-degrees per example.
    shear: horizontal shear factor drawn in +-shear per example.
    aspect: log aspect-ratio change drawn in +-aspect per example.
    size: canvas side in pixels.
    box: the longer side of the glyph's box in pixels (MNIST: 20 in 28).
    samples: points sampled along each stroke (samples - 1 segments).
  """

  max_strokes: int = 4
  join_probability: float = 0.5
  loop_probability: float = 0.15
  jitter: float = 0.06
  width: tuple[float, float] = (1.5, 3.0)
  degrees: float = 10.0
  shear: float = 0.2
  aspect: float = 0.15
  size: int = 28
  box: int = 20
  samples: int = 12


def glyph_program(key: jax.Array, style: GlyphStyle = GlyphStyle()) -> dict[str, jax.Array]:
  """The stroke program of one class.

  Args:
    key: the class's PRNG key (the same key always gives the same class).
    style: the drawing settings.

  Returns:
    {"points": [S, 4, 2] control points in [0, 1]^2, "active": [S] bool, "joined": [S] bool (starts at the previous
    stroke's end), "closed": [S] bool (ends at its own start)}, S = style.max_strokes.
  """
  k_count, k_points, k_join, k_loop = jax.random.split(key, 4)
  s = style.max_strokes
  count = jax.random.randint(k_count, (), 1, s + 1)
  joined = (jax.random.uniform(k_join, (s,)) < style.join_probability).at[0].set(False)
  return {"points": jax.random.uniform(k_points, (s, CONTROL_POINTS, 2)), "active": jnp.arange(s) < count,
          "joined": joined, "closed": jax.random.uniform(k_loop, (s,)) < style.loop_probability}


def bezier_points(points: jax.Array, samples: int) -> jax.Array:
  """Points [..., samples, 2] evenly spaced in the parameter along cubic Beziers with control points [..., 4, 2]."""
  t = jnp.linspace(0.0, 1.0, samples)[:, None]
  weights = jnp.stack([(1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t ** 2, t ** 3], axis=1)  # [T, 4, 1]
  return jnp.sum(weights * points[..., None, :, :], axis=-2)


def segment_distances(pixels: jax.Array, segments: jax.Array, valid: jax.Array) -> jax.Array:
  """Distance of every pixel to the nearest valid segment.

  Args:
    pixels: [P, 2] points.
    segments: [G, 2, 2] segments (start, end).
    valid: [G] bool; invalid segments are ignored (all invalid: every distance is a large number).

  Returns:
    [P] distances.
  """
  start, direction = segments[:, 0], segments[:, 1] - segments[:, 0]  # [G, 2]
  offset = pixels[:, None, :] - start[None]  # [P, G, 2]
  length2 = jnp.sum(direction ** 2, -1)
  along = jnp.clip(jnp.sum(offset * direction[None], -1) / jnp.maximum(length2, 1e-12), 0.0, 1.0)  # [P, G]
  nearest = offset - along[..., None] * direction[None]
  distances = jnp.sqrt(jnp.sum(nearest ** 2, -1) + 1e-12)
  return jnp.min(jnp.where(valid[None], distances, 1e6), axis=1)


def stroke_intensity(distances: jax.Array, width: jax.Array) -> jax.Array:
  """Ink in [0, 1] at the given distances from a stroke's centre line: 1 within width/2 - 1/2, 0 beyond
  width/2 + 1/2, linear between (a one-pixel soft edge)."""
  return jnp.clip(width / 2 + 0.5 - distances, 0.0, 1.0)


def render_segments(segments: jax.Array, valid: jax.Array, width: jax.Array, size: int) -> jax.Array:
  """A [size, size] image in [0, 1] of segments [G, 2, 2] in pixel coordinates (x = column, y = row)."""
  rows, cols = jnp.meshgrid(jnp.arange(size, dtype=jnp.float32), jnp.arange(size, dtype=jnp.float32), indexing="ij")
  pixels = jnp.stack([cols.ravel(), rows.ravel()], -1)
  return stroke_intensity(segment_distances(pixels, segments, valid), width).reshape(size, size)


def _example_segments(key: jax.Array, program: dict[str, jax.Array], style: GlyphStyle
                      ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """One example's segments [G, 2, 2] in pixels, their validity [G] and its stroke width []."""
  k_jitter, k_width, k_angle, k_shear, k_aspect = jax.random.split(key, 5)
  points = program["points"] + style.jitter * jax.random.normal(k_jitter, program["points"].shape)
  # Joins and loops after the jitter, so that joined strokes stay connected.
  previous_end = jnp.concatenate([points[:1, -1], points[:-1, -1]])
  points = points.at[:, 0].set(jnp.where(program["joined"][:, None], previous_end, points[:, 0]))
  points = points.at[:, -1].set(jnp.where(program["closed"][:, None], points[:, 0], points[:, -1]))
  angle = jnp.deg2rad(style.degrees) * jax.random.uniform(k_angle, (), minval=-1.0, maxval=1.0)
  shear = style.shear * jax.random.uniform(k_shear, (), minval=-1.0, maxval=1.0)
  aspect = jnp.exp(style.aspect * jax.random.uniform(k_aspect, (), minval=-1.0, maxval=1.0))
  cos, sin = jnp.cos(angle), jnp.sin(angle)
  matrix = jnp.array([[cos, -sin], [sin, cos]]) @ jnp.array([[aspect, shear], [0.0, 1.0 / aspect]])
  curve = bezier_points(points, style.samples) @ matrix.T  # [S, T, 2]
  segments = jnp.stack([curve[:, :-1], curve[:, 1:]], axis=2).reshape(-1, 2, 2)  # [G, 2, 2]
  valid = jnp.repeat(program["active"], style.samples - 1)
  width = jax.random.uniform(k_width, (), minval=style.width[0], maxval=style.width[1])
  # MNIST layout: the longer side of the box (strokes included) is style.box; centre of mass at the canvas centre.
  ends = segments.reshape(-1, 2)
  ends_valid = jnp.repeat(valid, 2)[:, None]
  low = jnp.min(jnp.where(ends_valid, ends, jnp.inf), 0)
  high = jnp.max(jnp.where(ends_valid, ends, -jnp.inf), 0)
  scale = jnp.maximum(style.box - width, 1.0) / jnp.maximum(jnp.max(high - low), 1e-3)
  lengths = jnp.where(valid, jnp.linalg.norm(segments[:, 1] - segments[:, 0], axis=-1), 0.0)  # [G]
  midpoints = jnp.mean(segments, axis=1)
  centroid = jnp.sum(lengths[:, None] * midpoints, 0) / jnp.maximum(jnp.sum(lengths), 1e-9)
  segments = (segments - centroid) * scale + style.size / 2
  return segments, valid, width


def render_examples(key: jax.Array, program: dict[str, jax.Array], count: int, style: GlyphStyle = GlyphStyle()
                    ) -> jax.Array:
  """`count` examples of one class.

  Args:
    key: draws each example's jitter, width and affine map.
    program: the class (`glyph_program`).
    count: examples to render.
    style: the drawing settings.

  Returns:
    [count, size, size] float32 ink in [0, 1].
  """
  def one(example_key):
    segments, valid, width = _example_segments(example_key, program, style)
    return render_segments(segments, valid, width, style.size)
  return jax.vmap(one)(jax.random.split(key, count))


def class_keys(key: jax.Array, class_ids: jax.Array) -> jax.Array:
  """The PRNG keys [C] of the classes with ids [C] in the family of `key`: a class is the same wherever its id is."""
  return jax.vmap(lambda i: jax.random.fold_in(key, i))(class_ids)


def glyph_batch(classes_key: jax.Array, class_ids: jax.Array, examples_key: jax.Array, examples: int,
                style: GlyphStyle = GlyphStyle()) -> jax.Array:
  """A P x K block of glyphs, class-major (the K examples of class 0, then of class 1, ...), in the stored range.

  Args:
    classes_key: the family of classes (`class_keys`).
    class_ids: [C] int class ids.
    examples_key: draws the examples.
    examples: K examples per class.
    style: the drawing settings.

  Returns:
    [C * K, size, size, 1] float32 in [0, 255].
  """
  programs = jax.vmap(lambda k: glyph_program(k, style))(class_keys(classes_key, class_ids))
  keys = jax.random.split(examples_key, class_ids.shape[0])
  ink = jax.vmap(lambda k, p: render_examples(k, p, examples, style))(keys, programs)  # [C, K, S, S]
  return (255.0 * ink).reshape(-1, style.size, style.size, 1)


def glyph_sheet(key: jax.Array, classes: int, examples: int, style: GlyphStyle = GlyphStyle()) -> np.ndarray:
  """A uint8 picture [classes * (size + 2), examples * (size + 2)] of glyphs: a row per class, a column per example,
  2-pixel grey gutters between cells."""
  classes_key, examples_key = jax.random.split(key)
  images = np.asarray(glyph_batch(classes_key, jnp.arange(classes), examples_key, examples, style))
  cells = images.reshape(classes, examples, style.size, style.size)
  padded = np.pad(cells, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=96.0)
  return np.round(padded.transpose(0, 2, 1, 3).reshape(classes * (style.size + 2), -1)).astype(np.uint8)
