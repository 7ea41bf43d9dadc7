"""The NR-IQA model: a registered backbone, pooling over one or several taps, an MLP head -> one score.

``NRIQA(backbone, taps, pooling, hidden, frozen, dtype)`` maps [0, 1] NHWC images to one quality score per
image (float32, shape ``(N,)``, higher is better after training on any set: targets are oriented so).

* taps: feature taps of the backbone (default: the one an image-level discriminator head reads, its class
  token for a ViT); each tap is pooled over positions and the pooled vectors are concatenated.
* pooling: ``"mean"`` (global average) or ``"mean_std"`` (average and standard deviation per channel).
* head: ``Dense(hidden)`` -> LeakyReLU(0.2) -> ``Dense(1)``, named ``head_fc1`` / ``head_fc2``: with the
  default tap and ``"mean"`` pooling the model is exactly an image-level discriminator of the same backbone
  (:class:`asym_jax.models.discriminators.BackboneDiscriminator`), so a trained discriminator's trunk and
  head drop in unchanged (``head_init="discriminator"``) and its logit is a score before any fine-tuning.
* The trunk lives under the ``backbone`` variable scope, in the layout of
  :func:`asym_jax.weights.backbone_variables` (and of the discriminator's trunk); ``frozen`` stops gradients
  at its parameters and keeps its batch norms in inference mode.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.models import backbones
from asym_jax.models.discriminators.heads import image_tap

__all__ = ["NRIQA", "POOLINGS", "default_taps"]

POOLINGS = ("mean", "mean_std")


def default_taps(backbone: str) -> tuple[str, ...]:
    return (image_tap(backbone),)


def _pool(features: jax.Array, pooling: str) -> jax.Array:
    f = features.astype(jnp.float32)
    if f.ndim == 2:  # a token (a ViT's class token): already one vector per image
        return f if pooling == "mean" else jnp.concatenate([f, jnp.zeros_like(f)], axis=-1)
    mean = jnp.mean(f, axis=tuple(range(1, f.ndim - 1)))
    if pooling == "mean":
        return mean
    var = jnp.mean(jnp.square(f - jnp.expand_dims(mean, tuple(range(1, f.ndim - 1)))), axis=tuple(range(1, f.ndim - 1)))
    return jnp.concatenate([mean, jnp.sqrt(var + 1e-12)], axis=-1)


class NRIQA(nn.Module):
    backbone: str = "resnet50"
    taps: tuple[str, ...] = ()
    pooling: str = "mean"
    hidden: int = 256
    frozen: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        spec = backbones.get(self.backbone)
        taps = tuple(self.taps) or default_taps(self.backbone)
        unknown = [t for t in taps if t not in spec.tap_channels]
        if unknown:
            raise InputError(f"NR-IQA model: backbone {self.backbone} has no tap {unknown[0]!r}; taps: "
                             f"{', '.join(spec.tap_channels)}")
        if self.pooling not in POOLINGS:
            raise InputError(f"NR-IQA model: pooling must be one of {POOLINGS}, got {self.pooling!r}")
        if x.ndim != 4 or x.shape[-1] != 3:
            raise InputError(f"NR-IQA model: expected NHWC RGB images, got shape {x.shape}")
        features = backbones.trunk_features(x, backbone=self.backbone, taps=taps, frozen=self.frozen, train=train,
                                            dtype=self.dtype, initializing=self.is_initializing())
        pooled = jnp.concatenate([_pool(features[t], self.pooling) for t in taps], axis=-1).astype(self.dtype)
        h = nn.leaky_relu(nn.Dense(self.hidden, dtype=self.dtype, name="head_fc1")(pooled), 0.2)
        return nn.Dense(1, dtype=self.dtype, name="head_fc2")(h)[:, 0].astype(jnp.float32)
