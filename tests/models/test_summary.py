"""The Keras-like summary: totals, per-layer rows, MACs on a real model, and the command line."""

import jax.numpy as jnp

from vision_jax import models
import importlib

summary_lib = importlib.import_module("vision_jax.models.summary")  # the module (the package exports the function)


def test_mobilenet_v1_summary_totals_and_macs():
  text = models.summary(models.get("mobilenet_v1"), (224, 224, 3), print_fn=None)
  # Keras MobileNet (alpha 1, 224): 4,253,864 total, 4,231,976 trainable, 21,888 non-trainable.
  assert "Total params: 4,253,864" in text
  assert "Trainable params: 4,231,976" in text
  assert "Non-trainable params: 21,888" in text
  # The paper's Table: 569 million mult-adds for 1.0 MobileNet-224.
  total_macs = int(text.split("Total MACs: ")[1].split()[0].replace(",", ""))
  assert round(total_macs / 1e6) == 569


def test_layer_rows_for_lenet():
  rows = {r.path: r for r in models.layer_table(models.get("lenet5"), (32, 32, 1))}
  # conv1: 28x28x6 outputs, 5x5x1 window: 117,600 MACs; 6 * 26 = 156 parameters.
  assert rows["conv1"].output_shape == (1, 28, 28, 6)
  assert rows["conv1"].macs == 28 * 28 * 6 * 25 and rows["conv1"].trainable == 156
  assert rows["conv2"].macs == 10 * 10 * 16 * 25 * 6
  assert rows["logits"].macs == 84 * 10 and rows["logits"].trainable == 850


def test_depth_aggregates_sub_layers():
  model = models.get("resnet18_cifar")
  rows = {r.path: r for r in models.layer_table(model, (32, 32, 3))}
  block = rows["layer1_0"]
  parts = [r for p, r in rows.items() if p.startswith("layer1_0/") and p.count("/") == 2]
  assert block.macs == sum(r.macs for r in parts) > 0
  assert block.trainable == sum(r.trainable for r in parts)
  text = models.summary(model, (32, 32, 3), depth=1, print_fn=None)
  assert "layer1_0 " in text and "layer1_0/conv1" not in text


def test_command_line(capsys):
  assert summary_lib.main(["lenet5", "--input_shape=32,32,1"]) == 0
  out = capsys.readouterr().out
  assert "Total params: 61,706" in out and "conv1" in out
  assert summary_lib.main(["resnet81"]) == 2
  assert "unknown model" in capsys.readouterr().err
