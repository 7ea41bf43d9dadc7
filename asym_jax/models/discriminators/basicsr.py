"""The ESRGAN and Real-ESRGAN discriminators, with BasicSR's argument and parameter names.

* :class:`VGGStyleDiscriminator` (ESRGAN): image-level, batch-normalised, 128 or 256 px input.
* :class:`UNetDiscriminatorSN` (Real-ESRGAN): per-pixel logits, spectral normalisation, optional skips.

``__call__(x, train)``: ``train=True`` uses batch statistics / refines the spectral-norm vectors (make
``batch_stats`` mutable), as PyTorch's training mode does.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.models.layers import BatchNorm, SpectralConv, upsample_bilinear2x

__all__ = ["UNetDiscriminatorSN", "VGGStyleDiscriminator"]

_PAD1 = ((1, 1), (1, 1))


class VGGStyleDiscriminator(nn.Module):
    """ESRGAN's VGG-style discriminator: one logit per image; input must be ``input_size`` square."""

    num_in_ch: int = 3
    num_feat: int = 64
    input_size: int = 128
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if self.input_size not in (128, 256):
            raise ValueError(f"input_size must be 128 or 256, got {self.input_size}")
        if x.shape[1:3] != (self.input_size, self.input_size):
            raise ValueError(f"VGGStyleDiscriminator expects {self.input_size} x {self.input_size} inputs, got {x.shape}")
        f = self.num_feat
        h = nn.leaky_relu(nn.Conv(f, (3, 3), padding=_PAD1, dtype=self.dtype, name="conv0_0")(x.astype(self.dtype)), 0.2)
        stages = [(f, f), (2 * f, 2 * f), (4 * f, 4 * f), (8 * f, 8 * f), (8 * f, 8 * f)]
        if self.input_size == 256:
            stages.append((8 * f, 8 * f))
        for i, (c0, c1) in enumerate(stages):
            if i > 0:
                h = nn.Conv(c0, (3, 3), padding=_PAD1, use_bias=False, dtype=self.dtype, name=f"conv{i}_0")(h)
                h = nn.leaky_relu(BatchNorm(dtype=self.dtype, name=f"bn{i}_0")(h, train), 0.2)
            h = nn.Conv(c1, (4, 4), strides=(2, 2), padding=_PAD1, use_bias=False, dtype=self.dtype, name=f"conv{i}_1")(h)
            h = nn.leaky_relu(BatchNorm(dtype=self.dtype, name=f"bn{i}_1")(h, train), 0.2)
        # PyTorch flattens NCHW: channel-major order.
        h = h.transpose(0, 3, 1, 2).reshape(h.shape[0], -1)
        h = nn.leaky_relu(nn.Dense(100, dtype=self.dtype, name="linear1")(h), 0.2)
        return nn.Dense(1, dtype=self.dtype, name="linear2")(h).astype(jnp.float32)


class UNetDiscriminatorSN(nn.Module):
    """Real-ESRGAN's U-Net discriminator with spectral normalisation: a logit per pixel (N x H x W x 1).

    Input sides must be multiples of 8.
    """

    num_in_ch: int = 3
    num_feat: int = 64
    skip_connection: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if x.shape[1] % 8 or x.shape[2] % 8:
            raise ValueError(f"UNetDiscriminatorSN needs sides that are multiples of 8, got {x.shape}")
        f, dt = self.num_feat, self.dtype

        def sn(features, name, kernel=3, stride=1):
            return lambda h: nn.leaky_relu(SpectralConv(features, (kernel, kernel), (stride, stride), _PAD1,
                                                        use_bias=False, dtype=dt, name=name)(h, train), 0.2)

        x0 = nn.leaky_relu(nn.Conv(f, (3, 3), padding=_PAD1, dtype=dt, name="conv0")(x.astype(dt)), 0.2)
        x1 = sn(2 * f, "conv1", 4, 2)(x0)
        x2 = sn(4 * f, "conv2", 4, 2)(x1)
        x3 = sn(8 * f, "conv3", 4, 2)(x2)
        x4 = sn(4 * f, "conv4")(upsample_bilinear2x(x3))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = sn(2 * f, "conv5")(upsample_bilinear2x(x4))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = sn(f, "conv6")(upsample_bilinear2x(x5))
        if self.skip_connection:
            x6 = x6 + x0
        out = sn(f, "conv8")(sn(f, "conv7")(x6))
        return nn.Conv(1, (3, 3), padding=_PAD1, dtype=dt, name="conv9")(out).astype(jnp.float32)
