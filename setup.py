"""Package list for setuptools: vision_jax/ plus the top-level configs/ and third_party/ shipped inside it."""
import setuptools

setuptools.setup(
    packages=setuptools.find_packages(include=["vision_jax", "vision_jax.*"])
    + ["vision_jax.configs", "vision_jax.third_party"],
)
