"""Discriminators: pix2pix PatchGAN, BasicSR's VGG-style (ESRGAN) and U-Net with spectral norm
(Real-ESRGAN); image- and patch-level heads on backbones come next."""

from asym_jax.models.discriminators.basicsr import UNetDiscriminatorSN, VGGStyleDiscriminator
from asym_jax.models.discriminators.patchgan import PatchGAN, patchgan_receptive_field

__all__ = ["PatchGAN", "UNetDiscriminatorSN", "VGGStyleDiscriminator", "patchgan_receptive_field"]
