"""The pix2pix PatchGAN discriminator (Isola et al. 2017, ``NLayerDiscriminator``).

``n_layers=3`` gives the 70 x 70 receptive field: 4 x 4 convolutions (stride 2, then two of stride 1),
padding 1, LeakyReLU 0.2, channels ``ndf * min(2^n, 8)``, a logit per position. Parameter names follow
the reference's ``nn.Sequential`` indices (``model_0``, ``model_2``, ``model_3`` ...).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.models.layers import BatchNorm, instance_norm

__all__ = ["PatchGAN", "patchgan_receptive_field"]

_PAD1 = ((1, 1), (1, 1))


def patchgan_receptive_field(n_layers: int) -> int:
    """Receptive field of one output logit, in input pixels (70 for three layers)."""
    field = 4  # the last 4x4 stride-1 convolution
    for stride in [1] + [2] * n_layers:  # walk back through the others
        field = (field - 1) * stride + 4
    return field


class PatchGAN(nn.Module):
    """``norm``: ``"batch"`` (pix2pix default), ``"instance"`` (no affine, as PyTorch's default) or
    ``"none"``; convolutions followed by a norm have a bias only with instance norm, as in pix2pix."""

    input_nc: int = 3
    ndf: int = 64
    n_layers: int = 3
    norm: str = "batch"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.norm not in ("batch", "instance", "none"):
            raise InputError(f"PatchGAN norm must be 'batch', 'instance' or 'none', got {self.norm!r}")
        use_bias = self.norm == "instance"
        index = 0

        def conv(h, features, stride, bias):
            nonlocal index
            out = nn.Conv(features, (4, 4), strides=(stride, stride), padding=_PAD1, use_bias=bias,
                          kernel_init=nn.initializers.normal(0.02), dtype=self.dtype, name=f"model_{index}")(h)
            index += 1
            return out

        def norm(h):
            nonlocal index
            if self.norm == "batch":
                h = BatchNorm(dtype=self.dtype, name=f"model_{index}")(h, train)
            elif self.norm == "instance":
                h = instance_norm(h)
            index += 1  # the reference keeps an Identity module in the sequence for norm="none"
            return h

        def act(h):
            nonlocal index
            index += 1
            return nn.leaky_relu(h, 0.2)

        h = act(conv(x.astype(self.dtype), self.ndf, 2, True))
        mult = 1
        for n in range(1, self.n_layers + 1):
            mult = min(2 ** n, 8)
            h = act(norm(conv(h, self.ndf * mult, 2 if n < self.n_layers else 1, use_bias)))
        return conv(h, 1, 1, True).astype(jnp.float32)
