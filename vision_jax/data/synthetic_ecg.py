"""A synthetic ECG-like rhythm task: single-lead signals [N, T, 1] in four rhythm classes.

Each beat is a sum of five Gaussian waves (P, Q, R, S, T), the shape used by McSharry et al., "A dynamical model
for generating synthetic electrocardiogram signals" (IEEE TBME, 2003). Beats are placed on a beat-time train
whose rate and regularity depend on the class:

  * `normal`:      regular (2% RR jitter), 62-98 beats per minute
  * `tachycardia`: regular, 110-170 bpm
  * `bradycardia`: regular, 35-55 bpm
  * `irregular`:   RR intervals drawn independently within +-50% of a 70-110 bpm mean and no P wave
                   (an atrial-fibrillation-like rhythm)

Per example the wave amplitudes and the overall gain vary, the T wave moves with the heart rate (Bazett's
sqrt(RR) scaling), and the signal carries Gaussian noise and a baseline wander of two slow sinusoids. Signals
are made with one batched FFT convolution of a beat-time impulse train with the example's beat template, so
thousands of examples take a fraction of a second.

Example:
  >>> signals, labels = generate(8, seed=0)
  >>> signals.shape, signals.dtype, sorted(labels.tolist())
  ((8, 1024, 1), dtype('float32'), [0, 0, 1, 1, 2, 2, 3, 3])
"""

from __future__ import annotations

import numpy as np

CLASS_NAMES = ("normal", "tachycardia", "bradycardia", "irregular")
# Beats per minute (low, high) of the rate drawn per example; for `irregular` the mean rate.
RATE_BPM = {"normal": (62.0, 98.0), "tachycardia": (110.0, 170.0), "bradycardia": (35.0, 55.0),
            "irregular": (70.0, 110.0)}
REGULAR_JITTER = 0.02  # relative standard deviation of RR intervals in the regular rhythms
IRREGULAR_SPREAD = 0.5  # irregular RR intervals are uniform in mean * [1 - spread, 1 + spread]
SAMPLE_RATE = 100.0  # Hz
LENGTH = 1024  # samples (10.24 s at 100 Hz)

# (offset from the R peak in s, width in s, amplitude) of the P, Q, R, S and T waves at 60 bpm.
_WAVES = np.array([(-0.20, 0.025, 0.12), (-0.035, 0.010, -0.12), (0.0, 0.012, 1.0), (0.035, 0.012, -0.25),
                   (0.26, 0.045, 0.30)])
_HALF_WINDOW = 0.6  # s; the template spans [-0.6, 0.6] s around the R peak


def beat_templates(amplitudes: np.ndarray, rr_seconds: np.ndarray, sample_rate: float = SAMPLE_RATE) -> np.ndarray:
  """One beat per example: the sum of the P, Q, R, S, T Gaussians sampled around the R peak.

  Args:
    amplitudes: [N, 5] wave amplitudes (P, Q, R, S, T).
    rr_seconds: [N] mean RR interval; the T wave offset scales with sqrt(RR) (Bazett).
    sample_rate: samples per second.

  Returns:
    [N, 2h + 1] float64 templates centred on the R peak (index h), h = 0.6 s of samples.
  """
  half = int(round(_HALF_WINDOW * sample_rate))
  t = np.arange(-half, half + 1) / sample_rate  # [L]
  offsets = np.broadcast_to(_WAVES[:, 0], amplitudes.shape).copy()
  offsets[:, 4] *= np.sqrt(rr_seconds)
  widths = _WAVES[:, 1]
  waves = np.exp(-0.5 * ((t[None, None, :] - offsets[:, :, None]) / widths[None, :, None]) ** 2)  # [N, 5, L]
  return np.einsum("nw,nwl->nl", amplitudes, waves)


def _beat_times(labels: np.ndarray, rng: np.random.Generator, duration: float):
  """Beat times [N, B] in seconds (the first beat falls before t=0) and each example's mean RR."""
  n = labels.shape[0]
  # Every RR is >= (1 - spread) * mean RR >= fastest_rr and the train starts within one mean RR before t=0, so
  # this many beats reach past the end of the signal by a template's half-width whatever the draws.
  fastest_rr = 60.0 / max(high for _, high in RATE_BPM.values()) * (1.0 - IRREGULAR_SPREAD)
  num_beats = int(np.ceil((duration + 2 * _HALF_WINDOW) / fastest_rr)) + 3
  low = np.array([RATE_BPM[c][0] for c in CLASS_NAMES])[labels]
  high = np.array([RATE_BPM[c][1] for c in CLASS_NAMES])[labels]
  mean_rr = 60.0 / rng.uniform(low, high)  # [N]
  irregular = labels == CLASS_NAMES.index("irregular")
  regular_rr = np.maximum(1.0 + REGULAR_JITTER * rng.standard_normal((n, num_beats)), 1.0 - IRREGULAR_SPREAD)
  irregular_rr = rng.uniform(1.0 - IRREGULAR_SPREAD, 1.0 + IRREGULAR_SPREAD, (n, num_beats))
  rr = mean_rr[:, None] * np.where(irregular[:, None], irregular_rr, regular_rr)
  start = -rng.uniform(0.0, 1.0, n) * mean_rr
  times = start[:, None] + np.cumsum(rr, axis=1) - rr[:, :1]
  return times, mean_rr


def generate(num_examples: int, seed: int, length: int = LENGTH, sample_rate: float = SAMPLE_RATE,
             noise_std: tuple[float, float] = (0.02, 0.12)) -> tuple[np.ndarray, np.ndarray]:
  """Synthetic ECG-like signals with balanced rhythm classes, deterministic in `seed`.

  Args:
    num_examples: N.
    seed: NumPy generator seed; the same seed gives the same signals and labels.
    length: T samples per signal.
    sample_rate: samples per second.
    noise_std: range of the per-example standard deviation of the additive Gaussian noise.

  Returns:
    (signals float32 [N, T, 1] in millivolt-like units, labels int32 [N] indexing `CLASS_NAMES`); every class
    has N // 4 or N // 4 + 1 examples, in shuffled order.
  """
  rng = np.random.default_rng(seed)
  k = len(CLASS_NAMES)
  labels = rng.permutation(np.arange(num_examples) % k).astype(np.int32)
  times, mean_rr = _beat_times(labels, rng, length / sample_rate)
  amplitudes = _WAVES[None, :, 2] * rng.uniform(0.8, 1.2, (num_examples, 5))
  amplitudes[labels == CLASS_NAMES.index("irregular"), 0] = 0.0  # no P wave before an irregular beat
  amplitudes *= rng.uniform(0.7, 1.3, (num_examples, 1))
  templates = beat_templates(amplitudes, mean_rr, sample_rate)  # [N, 2h + 1]
  half = (templates.shape[1] - 1) // 2
  # Impulse train over [-h, T + h) samples, so beats just outside the window still add their tails.
  padded = length + 2 * half
  impulses = np.zeros((num_examples, padded))
  index = np.round(times * sample_rate).astype(np.int64) + half
  inside = (index >= 0) & (index < padded)
  rows = np.broadcast_to(np.arange(num_examples)[:, None], index.shape)
  np.add.at(impulses, (rows[inside], index[inside]), 1.0)
  n_fft = 1 << int(np.ceil(np.log2(padded + 2 * half)))
  full = np.fft.irfft(np.fft.rfft(impulses, n_fft) * np.fft.rfft(templates, n_fft), n_fft)
  signals = full[:, 2 * half:2 * half + length]  # full-convolution index i + j = t + 2h for signal time t
  t = np.arange(length) / sample_rate
  wander_freq = rng.uniform(0.05, 0.5, (num_examples, 2, 1))
  wander_amp = rng.uniform(0.0, 0.2, (num_examples, 2, 1))
  wander_phase = rng.uniform(0.0, 2 * np.pi, (num_examples, 2, 1))
  signals += np.sum(wander_amp * np.sin(2 * np.pi * wander_freq * t + wander_phase), axis=1)
  signals += rng.uniform(*noise_std, (num_examples, 1)) * rng.standard_normal((num_examples, length))
  return signals[..., None].astype(np.float32), labels
