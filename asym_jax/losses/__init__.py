"""Training losses: adversarial objectives on discriminator logits, perceptual (VGG feature) losses, and
``get_loss`` for every image-pair loss by name (the metric registry's losses plus ``perceptual_vgg19``).
"""

from asym_jax.losses.adversarial import KINDS, discriminator_loss, generator_loss
from asym_jax.losses.perceptual import (CRITERIA, PERCEPTUAL_INFO, REAL_ESRGAN_LAYERS, perceptual, perceptual_loss,
                                        perceptual_params)
from asym_jax.losses.registry import get_loss, loss_names, loss_trunk
from asym_jax.metrics.registry import Loss

__all__ = [
    "CRITERIA", "KINDS", "Loss", "PERCEPTUAL_INFO", "REAL_ESRGAN_LAYERS", "discriminator_loss", "generator_loss",
    "get_loss", "loss_names", "loss_trunk", "perceptual", "perceptual_loss", "perceptual_params",
]
