"""Darknet cfg/weights import: a tiny YOLOv3 against pytorchyolo's Darknet (committed outputs), a tiny YOLOv2
(reorg + region, which pytorchyolo lacks) against a float64 NumPy forward written here from darknet's C loops,
the header formats, and one-line errors for bad files."""

import importlib.util
import os

import numpy as np
import pytest

from vision_jax.errors import DataError
from vision_jax.interop import darknet

FIXTURES = os.path.join(os.path.dirname(__file__), "..", "fixtures", "darknet")
_spec = importlib.util.spec_from_file_location("make_darknet", os.path.join(FIXTURES, "make_darknet.py"))
make_darknet = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_darknet)


def _write_random_weights(cfg_name: str, path: str, seed: int = make_darknet.WEIGHTS_SEED, header=make_darknet.HEADER):
  model = darknet.build(os.path.join(FIXTURES, cfg_name))
  convs = [(l.get("batch_normalize"), l.get("filters"), l.get("in_channels"), l.get("size"))
           for l in model.layers if l.kind == "convolutional"]
  values = make_darknet.random_weights(convs, seed)
  with open(path, "wb") as f:
    f.write(make_darknet.weights_bytes(values, header))
  return values


def test_tiny_v3_equals_pytorchyolo(tmp_path):
  path = str(tmp_path / "tiny_v3.weights")
  _write_random_weights("tiny_v3.cfg", path)
  model, variables = darknet.load(os.path.join(FIXTURES, "tiny_v3.cfg"), path)
  out = np.asarray(model.apply(variables, make_darknet.random_images()))
  reference = np.load(os.path.join(FIXTURES, "darknet_pytorchyolo.npz"), allow_pickle=False)["tiny_v3_outputs"]
  assert out.shape == reference.shape == (2, 2 * 4 * 4 + 2 * 8 * 8, 8)
  np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)


# --- float64 NumPy reference of darknet's forward pass (NCHW, loops as in darknet's C) ---------------------------
def _np_conv(x, weights, bias, size, stride, padding):
  c, h, w = x.shape
  padded = np.pad(x, ((0, 0), (padding, padding), (padding, padding)))
  out_h, out_w = (h + 2 * padding - size) // stride + 1, (w + 2 * padding - size) // stride + 1
  out = np.zeros((weights.shape[0], out_h, out_w))
  for dy in range(size):
    for dx in range(size):
      patch = padded[:, dy:dy + stride * out_h:stride, dx:dx + stride * out_w:stride]
      out += np.einsum("oc,chw->ohw", weights[:, :, dy, dx], patch)
  return out + bias[:, None, None]


def _np_maxpool(x, size, stride, padding):
  c, h, w = x.shape
  out_h, out_w = (h + padding - size) // stride + 1, (w + padding - size) // stride + 1
  out = np.full((c, out_h, out_w), -np.inf)
  for i in range(out_h):
    for j in range(out_w):
      for n in range(size):
        for m in range(size):
          y, x_ = i * stride + n - padding // 2, j * stride + m - padding // 2
          if 0 <= y < h and 0 <= x_ < w:
            out[:, i, j] = np.maximum(out[:, i, j], x[:, y, x_])
  return out


def _np_reorg(x, stride):
  """darknet blas.c reorg_cpu(x, w, h, c, batch=1, stride, forward=0, out) with the input's w, h, c."""
  c, h, w = x.shape
  flat_in, flat_out = x.reshape(-1), np.zeros(x.size)
  out_c = c // (stride * stride)
  for k in range(c):
    for j in range(h):
      for i in range(w):
        in_index = i + w * (j + h * k)
        c2, offset = k % out_c, k // out_c
        w2, h2 = i * stride + offset % stride, j * stride + offset // stride
        flat_out[in_index] = flat_in[w2 + w * stride * (h2 + h * stride * c2)]
  return flat_out.reshape(c * stride * stride, h // stride, w // stride)


def _np_darknet(layers, values, image):
  """One image [H, W, C] -> region output rows [A * H * W, 5 + C] (pytorchyolo's decoded layout)."""
  x = image.astype(np.float64).transpose(2, 0, 1)
  outputs, position, result = [], 0, None
  for layer in layers:
    o = dict(layer.options)
    if layer.kind == "convolutional":
      f, s, c = o["filters"], o["size"], o["in_channels"]
      if o["batch_normalize"]:
        beta, gamma, mean, var = (values[position + i * f:position + (i + 1) * f].astype(np.float64) for i in range(4))
        position += 4 * f
      else:
        bias = values[position:position + f].astype(np.float64)
        position += f
      kernel = values[position:position + f * c * s * s].reshape(f, c, s, s).astype(np.float64)
      position += f * c * s * s
      if o["batch_normalize"]:
        x = _np_conv(x, kernel, np.zeros(f), s, o["stride"], o["padding"])
        x = (x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
      else:
        x = _np_conv(x, kernel, bias, s, o["stride"], o["padding"])
      x = np.where(x > 0, x, 0.1 * x) if o["activation"] == "leaky" else x
    elif layer.kind == "maxpool":
      x = _np_maxpool(x, o["size"], o["stride"], o["padding"])
    elif layer.kind == "route":
      x = np.concatenate([outputs[i] for i in o["layers"]], 0)
    elif layer.kind == "reorg":
      x = _np_reorg(x, o["stride"])
    elif layer.kind == "region":
      num, classes = len(o["anchors"]), o["classes"]
      _, g_h, g_w = x.shape
      rows = []
      for a in range(num):
        t = x[a * (5 + classes):(a + 1) * (5 + classes)]  # [5 + C, H, W]
        sig = lambda v: 1 / (1 + np.exp(-v))
        cx = (sig(t[0]) + np.arange(g_w)[None, :]) / g_w * 32
        cy = (sig(t[1]) + np.arange(g_h)[:, None]) / g_h * 32
        bw = np.exp(t[2]) * o["anchors"][a][0] / g_w * 32
        bh = np.exp(t[3]) * o["anchors"][a][1] / g_h * 32
        e = np.exp(t[5:] - t[5:].max(0))
        probs = e / e.sum(0)
        rows.append(np.concatenate([np.stack([cx, cy, bw, bh, sig(t[4])]), probs]).reshape(5 + classes, -1).T)
      result = np.concatenate(rows, 0)
    else:
      raise AssertionError(layer.kind)
    outputs.append(x)
  assert position == values.size
  return result


def test_tiny_v2_reorg_region_equal_numpy_float64(tmp_path):
  path = str(tmp_path / "tiny_v2.weights")
  values = _write_random_weights("tiny_v2.cfg", path, seed=3)
  model, variables = darknet.load(os.path.join(FIXTURES, "tiny_v2.cfg"), path)
  images = make_darknet.random_images()
  out = np.asarray(model.apply(variables, images))
  reference = np.stack([_np_darknet(model.layers, values, image) for image in images])
  assert out.shape == reference.shape == (2, 2 * 8 * 8, 8)
  np.testing.assert_allclose(out, reference, rtol=1e-4, atol=1e-4)
  raw = model.clone(decode=False).apply(variables, images)
  assert len(raw) == 1 and raw[0].shape == (2, 8, 8, 2, 8)


def test_reorg_is_darknets_permutation():
  x = np.arange(2 * 4 * 6 * 8, dtype=np.float64).reshape(2, 4, 6, 8)  # NHWC, C = 8
  out = np.asarray(darknet.darknet_reorg(x, 2))
  assert out.shape == (2, 2, 3, 32)
  for n in range(2):
    np.testing.assert_array_equal(out[n].transpose(2, 0, 1), _np_reorg(x[n].transpose(2, 0, 1), 2))


def test_header_int32_seen_for_old_versions(tmp_path):
  values = np.arange(5, dtype=np.float32)
  for header, size in (((0, 1, 0, 77), 16), ((0, 2, 0, 2 ** 40), 20), ((1, 0, 0, 5), 20)):
    path = tmp_path / "w.weights"
    path.write_bytes(make_darknet.weights_bytes(values, header))
    assert os.path.getsize(path) == size + 20
    info, read = darknet.read_weights(str(path))
    assert (info["major"], info["minor"], info["revision"], info["seen"]) == header
    np.testing.assert_array_equal(read, values)


def test_bad_files_raise_one_line_errors(tmp_path):
  cfg = os.path.join(FIXTURES, "tiny_v3.cfg")
  path = str(tmp_path / "w.weights")
  values = _write_random_weights("tiny_v3.cfg", path)
  with open(path, "wb") as f:
    f.write(make_darknet.weights_bytes(values[:-10]))
  with pytest.raises(DataError, match=f"holds {values.size - 10} floats.*need {values.size}"):
    darknet.load(cfg, path)
  (tmp_path / "short.weights").write_bytes(b"\x00" * 10)
  with pytest.raises(DataError, match="shorter than the header"):
    darknet.read_weights(str(tmp_path / "short.weights"))
  with pytest.raises(DataError, match="does not exist"):
    darknet.load(cfg, str(tmp_path / "missing.weights"))
  net = "[net]\nwidth=32\nheight=32\nchannels=3\n"
  conv = "[convolutional]\nfilters=4\nsize=3\nstride=1\npad=1\nactivation=leaky\n"
  cases = {
      "[convolutional]\nfilters=4\n": "must start with a \\[net\\]",
      net + "[dropout]\nprobability=.5\n": "section \\[dropout\\] is not supported",
      net + conv + "[shortcut]\nfrom=-2\n": "not an earlier layer",
      net + conv + "[convolutional]\nfilters=8\nsize=1\nactivation=leaky\n[shortcut]\nfrom=-2\n": "equal shapes",
      net + conv + "[yolo]\nmask=0\nanchors=1,2\nclasses=3\n": "needs 8: fix its filters=",
      net + "[convolutional]\nfilters=four\n": "filters='four' is not an integer",
      net + "size 3\n": "neither",
  }
  for text, message in cases.items():
    with pytest.raises(DataError, match=message) as info:
      darknet.parse_cfg(text, "bad.cfg")
    assert "\n" not in str(info.value)
