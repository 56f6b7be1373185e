"""Weight importers: `interop.keras.load` (Keras `.weights.h5` / `.keras`) and `interop.torch.load`
(torchvision state dicts). Both return Flax variables for the matching `vision_jax.models` network.

Import the submodules explicitly (`from vision_jax.interop import keras`): neither Keras nor torch is needed
to use them (h5py reads Keras files; torch only reads `.pt` files).
"""
