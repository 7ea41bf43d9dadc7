"""Image-level ("vanilla") and patch-level discriminator heads on any registered backbone.

Both heads are the same two-layer MLP (``hidden`` units, LeakyReLU 0.2, one logit) on the backbone's
``head_tap`` feature map; they differ only in where the spatial pooling happens:

* ``level="image"``: average over positions first (for a ViT: its class token), one logit per image;
* ``level="patch"``: the MLP at every position (a 1 x 1 convolution), a logit per patch.

``frozen=True`` stops gradients at the backbone's parameters (the input image still receives them) and
keeps its batch norms in inference mode; an optimiser should also leave the frozen trunk out of weight
decay.
Inputs whose sides are not multiples of a transformer's patch size are resized (bilinear, antialiased)
to the nearest multiple first. The backbone lives under the ``backbone`` variable scope, so pretrained
trunks are dropped in with :func:`asym_jax.weights.with_backbone`.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.models import backbones

__all__ = ["BackboneDiscriminator", "image_tap"]


def image_tap(backbone: str) -> str:
    """The tap an image-level head reads: a ViT's class token, else the backbone's ``head_tap``."""
    spec = backbones.get(backbone)
    return "cls" if "cls" in spec.tap_channels else spec.head_tap


class BackboneDiscriminator(nn.Module):
    backbone: str = "vgg16"
    level: str = "patch"
    frozen: bool = False
    hidden: int = 256
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.level not in ("image", "patch"):
            raise InputError(f"discriminator level must be 'image' or 'patch', got {self.level!r}")
        tap = image_tap(self.backbone) if self.level == "image" else backbones.get(self.backbone).head_tap
        features = backbones.trunk_features(x, backbone=self.backbone, taps=(tap,), frozen=self.frozen, train=train,
                                            dtype=self.dtype, initializing=self.is_initializing())[tap]
        if self.level == "image" and features.ndim == 4:
            features = jnp.mean(features.astype(jnp.float32), axis=(1, 2)).astype(features.dtype)
        h = nn.leaky_relu(nn.Dense(self.hidden, dtype=self.dtype, name="head_fc1")(features), 0.2)
        return nn.Dense(1, dtype=self.dtype, name="head_fc2")(h).astype(jnp.float32)
