"""asym_jax: perceptual super-resolution training and image-quality assessment in JAX/Flax."""

__version__ = "0.1.0"
