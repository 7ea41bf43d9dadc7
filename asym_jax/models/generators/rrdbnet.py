"""RRDBNet (ESRGAN / Real-ESRGAN generator), with BasicSR's argument and parameter names.

x4 upsamples directly; x2 and x1 first pixel-unshuffle the input by 2 and 4 (BasicSR's extension), so
every scale ends with the same two nearest-neighbour x2 upsamplings; sides that are not multiples of the
unshuffle factor are reflect-padded and the output cropped, as Real-ESRGAN's inference does. Parameter names follow BasicSR
(``conv_first``, ``body_0/rdb1/conv1``, ..., ``conv_last``), so PyTorch checkpoints convert by renaming.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["RRDBNet", "pixel_unshuffle", "upsample_nearest"]


def pixel_unshuffle(x: jax.Array, scale: int) -> jax.Array:
    """NHWC space-to-depth with PyTorch's channel order (``c * scale^2 + i * scale + j``)."""
    n, h, w, c = x.shape
    if h % scale or w % scale:
        raise ValueError(f"pixel_unshuffle: {h} x {w} is not divisible by {scale}")
    x = x.reshape(n, h // scale, scale, w // scale, scale, c)
    return x.transpose(0, 1, 3, 5, 2, 4).reshape(n, h // scale, w // scale, c * scale * scale)


def upsample_nearest(x: jax.Array, factor: int = 2) -> jax.Array:
    return jnp.repeat(jnp.repeat(x, factor, axis=1), factor, axis=2)


def _conv(features: int, name: str, dtype: Any, scale: float = 1.0) -> nn.Conv:
    # BasicSR's default_init_weights: kaiming normal (fan_in) scaled by ``scale``, zero bias.
    init = nn.initializers.variance_scaling(2.0 * scale * scale, "fan_in", "normal")
    return nn.Conv(features, (3, 3), padding=((1, 1), (1, 1)), kernel_init=init, dtype=dtype, name=name)


class ResidualDenseBlock(nn.Module):
    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        features = [x]
        for i in range(1, 5):
            h = _conv(self.num_grow_ch, f"conv{i}", self.dtype, 0.1)(jnp.concatenate(features, axis=-1))
            features.append(nn.leaky_relu(h, 0.2))
        out = _conv(self.num_feat, "conv5", self.dtype, 0.1)(jnp.concatenate(features, axis=-1))
        return out * 0.2 + x


class RRDB(nn.Module):
    num_feat: int = 64
    num_grow_ch: int = 32
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        out = x
        for i in range(1, 4):
            out = ResidualDenseBlock(self.num_feat, self.num_grow_ch, self.dtype, name=f"rdb{i}")(out)
        return out * 0.2 + x


class RRDBNet(nn.Module):
    """ESRGAN generator. Input NHWC in [0, 1]; output NHWC, ``scale`` times larger (not clipped).

    Attributes (BasicSR names): num_in_ch, num_out_ch, scale (1, 2 or 4), num_feat, num_block,
    num_grow_ch; dtype is the compute dtype (parameters stay float32); remat recomputes each RRDB
    in the backward pass to save activation memory.
    """

    num_in_ch: int = 3
    num_out_ch: int = 3
    scale: int = 4
    num_feat: int = 64
    num_block: int = 23
    num_grow_ch: int = 32
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        if self.scale not in (1, 2, 4):
            raise ValueError(f"RRDBNet scale must be 1, 2 or 4, got {self.scale}")
        if x.shape[-1] != self.num_in_ch:
            raise ValueError(f"RRDBNet expects {self.num_in_ch} input channels, got shape {x.shape}")
        height, width = x.shape[1:3]
        feat = x.astype(self.dtype)
        if self.scale in (1, 2):
            # Any size: reflect-pad to a multiple of the unshuffle factor and crop the output back, as
            # Real-ESRGAN's inference code does.
            factor = 4 // self.scale
            pad_h, pad_w = (-height) % factor, (-width) % factor
            if pad_h or pad_w:
                feat = jnp.pad(feat, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
            feat = pixel_unshuffle(feat, factor)
        feat = _conv(self.num_feat, "conv_first", self.dtype)(feat)
        block = nn.remat(RRDB) if self.remat else RRDB
        body = feat
        for i in range(self.num_block):
            body = block(self.num_feat, self.num_grow_ch, self.dtype, name=f"body_{i}")(body)
        feat = feat + _conv(self.num_feat, "conv_body", self.dtype)(body)
        feat = nn.leaky_relu(_conv(self.num_feat, "conv_up1", self.dtype)(upsample_nearest(feat)), 0.2)
        feat = nn.leaky_relu(_conv(self.num_feat, "conv_up2", self.dtype)(upsample_nearest(feat)), 0.2)
        feat = nn.leaky_relu(_conv(self.num_feat, "conv_hr", self.dtype)(feat), 0.2)
        out = _conv(self.num_out_ch, "conv_last", self.dtype)(feat)
        return out[:, :height * self.scale, :width * self.scale, :].astype(jnp.float32)
