"""Discriminators: BasicSR's VGG-style (ESRGAN) and U-Net with spectral norm (Real-ESRGAN); more to come."""

from asym_jax.models.discriminators.basicsr import UNetDiscriminatorSN, VGGStyleDiscriminator

__all__ = ["UNetDiscriminatorSN", "VGGStyleDiscriminator"]
