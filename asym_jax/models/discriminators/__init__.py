"""Discriminators, built by name: ``get(name, **options) -> flax module``.

* ``patchgan``: pix2pix PatchGAN (70 x 70 receptive field);
* ``unet_sn``: Real-ESRGAN U-Net with spectral normalisation; ``vgg_style``: ESRGAN's VGG-style;
* ``backbone``: an image- or patch-level head on any registered backbone
  (``backbone=..., level="image"|"patch", frozen=...``), with shortcuts ``<backbone>_image`` and
  ``<backbone>_patch`` (``vgg16_patch``, ``resnet50_image``, ``dinov2_s14_patch`` ...).

Every discriminator is called as ``module.apply(variables, x, train=...)`` on [0, 1] NHWC images
and returns logits: N x 1 (image level) or N x h x w x 1 (patch level).
"""

from __future__ import annotations

import flax.linen as nn

from asym_jax.errors import InputError
from asym_jax.models import backbones
from asym_jax.models.discriminators.basicsr import UNetDiscriminatorSN, VGGStyleDiscriminator
from asym_jax.models.discriminators.heads import BackboneDiscriminator
from asym_jax.models.discriminators.patchgan import PatchGAN, patchgan_receptive_field

__all__ = ["BackboneDiscriminator", "PatchGAN", "UNetDiscriminatorSN", "VGGStyleDiscriminator", "backbone_of", "get",
           "names", "patchgan_receptive_field"]

_BUILDERS = {"patchgan": PatchGAN, "unet_sn": UNetDiscriminatorSN, "vgg_style": VGGStyleDiscriminator,
             "backbone": BackboneDiscriminator}


def names() -> list[str]:
    shortcuts = [f"{b}_{level}" for b in backbones.names() for level in ("image", "patch")]
    return sorted(_BUILDERS) + shortcuts


def get(name: str, **options) -> nn.Module:
    """Builds discriminator ``name`` with ``options`` (the module's attribute names)."""
    if name in _BUILDERS:
        builder = _BUILDERS[name]
    else:
        backbone, _, level = name.rpartition("_")
        if level not in ("image", "patch") or backbone not in backbones.names():
            raise InputError(f"unknown discriminator {name!r}; known: {', '.join(names())}")
        builder, options = BackboneDiscriminator, {"backbone": backbone, "level": level, **options}
    try:
        return builder(**options)
    except TypeError as error:
        raise InputError(f"discriminator {name!r}: {error}") from None


def backbone_of(name: str, options: dict | None = None) -> tuple[str | None, str | None]:
    """``(backbone, level)`` of discriminator ``name`` (with its ``options``), ``(None, None)`` for the
    discriminators without a backbone trunk (PatchGAN, UNet-SN, VGG-style)."""
    options = options or {}
    if name == "backbone":
        return options.get("backbone", "vgg16"), options.get("level", "patch")
    if name in _BUILDERS:
        return None, None
    backbone, _, level = name.rpartition("_")
    if level not in ("image", "patch") or backbone not in backbones.names():
        raise InputError(f"unknown discriminator {name!r}; known: {', '.join(names())}")
    return backbone, level
