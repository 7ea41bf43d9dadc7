"""Super-resolution generators: SwinIR and RRDBNet (ESRGAN), with the reference argument names."""

from asym_jax.models.generators.rrdbnet import RRDBNet, pixel_unshuffle, upsample_nearest
from asym_jax.models.generators.swinir import SWINIR_PRESETS, SwinIR, pixel_shuffle

__all__ = ["RRDBNet", "SWINIR_PRESETS", "SwinIR", "pixel_shuffle", "pixel_unshuffle", "upsample_nearest"]
