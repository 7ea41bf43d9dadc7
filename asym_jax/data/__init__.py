"""Data: embedded sample images and distortions (here); tfds builders and grain pipelines later."""

from asym_jax.data.samples import DISTORTIONS, SAMPLE_NAMES, distort, sample_image, sample_pairs

__all__ = ["DISTORTIONS", "SAMPLE_NAMES", "distort", "sample_image", "sample_pairs"]
