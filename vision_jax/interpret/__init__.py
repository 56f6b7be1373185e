"""Seeing inside networks: pure functions over any Flax classifier (zoo models, runs trained here, imported
torchvision/Keras weights) and commands that write pictures.

  * `probe`: a named layer's activation and the gradient with respect to it (`flax.linen.intercept_methods`).
  * `attribution`: saliency, SmoothGrad, guided backpropagation, integrated gradients, occlusion.
  * `cam`: Grad-CAM and Grad-CAM++ at any named layer.
  * `views`: first-layer filters, activation maps, activation maximisation (input problem "activation_max").
  * `dream`, `style`: DeepDream and neural style transfer (input problems "deepdream", "style_transfer").
  * `network`: the network a tool looks through; `pointing`: the pointing-game localisation check.
  * `python -m vision_jax.interpret METHOD ...` (`__main__`, `commands`): overlays and grids as PNG.
"""
