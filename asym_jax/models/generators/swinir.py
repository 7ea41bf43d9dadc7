"""SwinIR (Liang et al. 2021) with the argument and parameter names of the official / BasicSR code.

Input NHWC in [0, 1]. Like the official ``network_swinir.py``, the input is padded at the bottom and
right by reflection to a multiple of ``window_size`` and the output is cropped back to ``scale`` times
the input size, so any input size works. Shifted-window masks are computed for the actual (padded) size.

Presets: classical SR "M" (``embed_dim=180, depths=(6,)*6, num_heads=(6,)*6, window_size=8,
mlp_ratio=2, upsampler="pixelshuffle", resi_connection="1conv"``) and lightweight (``embed_dim=60,
depths=(6,)*4, num_heads=(6,)*4, upsampler="pixelshuffledirect"``); see :data:`SWINIR_PRESETS`.
Parameter names follow PyTorch's with ``.N`` written ``_N`` (``layers_0/residual_group/blocks_1/attn/qkv``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.models.generators.rrdbnet import upsample_nearest
from asym_jax.models.layers import drop_path
from asym_jax.models.window_attention import WindowAttention, shift_mask, window_partition, window_reverse

__all__ = ["SWINIR_PRESETS", "SwinIR", "pixel_shuffle"]

SWINIR_PRESETS = {
    "classical_m": dict(embed_dim=180, depths=(6, 6, 6, 6, 6, 6), num_heads=(6, 6, 6, 6, 6, 6), window_size=8,
                        mlp_ratio=2.0, upsampler="pixelshuffle", resi_connection="1conv", img_size=64),
    "lightweight": dict(embed_dim=60, depths=(6, 6, 6, 6), num_heads=(6, 6, 6, 6), window_size=8, mlp_ratio=2.0,
                        upsampler="pixelshuffledirect", resi_connection="1conv", img_size=64),
}

_RGB_MEAN = (0.4488, 0.4371, 0.4040)
_trunc_normal = nn.initializers.truncated_normal(stddev=0.02)


def pixel_shuffle(x: jax.Array, scale: int) -> jax.Array:
    """NHWC depth-to-space with PyTorch's ``PixelShuffle`` channel order."""
    n, h, w, c = x.shape
    out = c // (scale * scale)
    x = x.reshape(n, h, w, out, scale, scale)
    return x.transpose(0, 1, 4, 2, 5, 3).reshape(n, h * scale, w * scale, out)


class SwinTransformerBlock(nn.Module):
    dim: int
    num_heads: int
    window: int
    shift: int
    mlp_ratio: float
    qkv_bias: bool
    qk_scale: float | None
    drop_path: float
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, size: tuple[int, int], deterministic: bool) -> jax.Array:
        h, w = size
        b, _, c = x.shape
        shortcut = x
        y = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm1")(x).reshape(b, h, w, c)
        if self.shift:
            y = jnp.roll(y, (-self.shift, -self.shift), axis=(1, 2))
        mask = jnp.asarray(shift_mask(h, w, self.window, self.shift)) if self.shift else None
        windows = WindowAttention(self.dim, self.window, self.num_heads, self.qkv_bias, self.qk_scale, self.dtype,
                                  name="attn")(window_partition(y, self.window), mask)
        y = window_reverse(windows, self.window, h, w)
        if self.shift:
            y = jnp.roll(y, (self.shift, self.shift), axis=(1, 2))
        x = shortcut + drop_path(self, y.reshape(b, h * w, c), self.drop_path, deterministic)
        y = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm2")(x)
        hidden = int(c * self.mlp_ratio)
        y = nn.Dense(hidden, kernel_init=_trunc_normal, dtype=self.dtype, name="mlp_fc1")(y)
        y = nn.gelu(y, approximate=False)
        y = nn.Dense(c, kernel_init=_trunc_normal, dtype=self.dtype, name="mlp_fc2")(y)
        return x + drop_path(self, y, self.drop_path, deterministic)



def _conv(features: int, name: str, dtype: Any, kernel: int = 3) -> nn.Conv:
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), padding=((pad, pad), (pad, pad)), dtype=dtype, name=name)


def _residual_conv(x: jax.Array, dim: int, kind: str, prefix: str, dtype: Any) -> jax.Array:
    if kind == "1conv":
        return _conv(dim, prefix, dtype)(x)
    if kind == "3conv":
        x = nn.leaky_relu(_conv(dim // 4, f"{prefix}_0", dtype)(x), 0.2)
        x = nn.leaky_relu(_conv(dim // 4, f"{prefix}_2", dtype, kernel=1)(x), 0.2)
        return _conv(dim, f"{prefix}_4", dtype)(x)
    raise ValueError(f"resi_connection must be '1conv' or '3conv', got {kind!r}")


class SwinIR(nn.Module):
    """SwinIR; attributes keep the official names (``upscale`` is the scale factor).

    ``deterministic=False`` in ``__call__`` enables stochastic depth (``drop_path_rate``) and needs a
    ``"dropout"`` RNG. ``img_size`` only matters as in the original: a window larger than ``img_size``
    is shrunk to it (and shifting disabled).
    """

    upscale: int = 4
    in_chans: int = 3
    img_size: int = 64
    embed_dim: int = 96
    depths: Sequence[int] = (6, 6, 6, 6)
    num_heads: Sequence[int] = (6, 6, 6, 6)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    qk_scale: float | None = None
    drop_path_rate: float = 0.1
    ape: bool = False
    patch_norm: bool = True
    img_range: float = 1.0
    upsampler: str = ""
    resi_connection: str = "1conv"
    dtype: Any = jnp.float32
    remat: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool = True) -> jax.Array:
        if self.ape:
            raise NotImplementedError("absolute position embeddings (ape=True) are not supported")
        if x.shape[-1] != self.in_chans:
            raise ValueError(f"SwinIR expects {self.in_chans} input channels, got shape {x.shape}")
        if self.upsampler not in ("pixelshuffle", "pixelshuffledirect", "nearest+conv", ""):
            raise ValueError(f"unknown upsampler {self.upsampler!r}")
        height, width = x.shape[1:3]
        window = self.window_size
        pad_h, pad_w = (-height) % window, (-width) % window
        if pad_h or pad_w:
            if pad_h >= height or pad_w >= width:
                raise ValueError(f"SwinIR: a {height} x {width} input is too small to reflect-pad to a multiple of "
                                 f"the window ({window})")
            x = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        mean = jnp.asarray(_RGB_MEAN if self.in_chans == 3 else (0.0,) * self.in_chans, jnp.float32)
        x = ((x.astype(jnp.float32) - mean) * self.img_range).astype(self.dtype)

        dim, num_feat = self.embed_dim, 64
        first = _conv(dim, "conv_first", self.dtype)(x)
        deep = self._features(first, deterministic)
        body = _residual_conv(deep, dim, self.resi_connection, "conv_after_body", self.dtype) + first
        if self.upsampler == "pixelshuffle":
            y = nn.leaky_relu(_conv(num_feat, "conv_before_upsample_0", self.dtype)(body), 0.01)
            y = self._upsample(y, num_feat)
            y = _conv(self.in_chans, "conv_last", self.dtype)(y)
        elif self.upsampler == "pixelshuffledirect":
            y = _conv(self.upscale ** 2 * self.in_chans, "upsample_0", self.dtype)(body)
            y = pixel_shuffle(y, self.upscale)
        elif self.upsampler == "nearest+conv":
            if self.upscale != 4:
                raise ValueError("upsampler 'nearest+conv' supports x4 only")
            y = nn.leaky_relu(_conv(num_feat, "conv_before_upsample_0", self.dtype)(body), 0.01)
            y = nn.leaky_relu(_conv(num_feat, "conv_up1", self.dtype)(upsample_nearest(y)), 0.2)
            y = nn.leaky_relu(_conv(num_feat, "conv_up2", self.dtype)(upsample_nearest(y)), 0.2)
            y = _conv(self.in_chans, "conv_last", self.dtype)(nn.leaky_relu(_conv(num_feat, "conv_hr", self.dtype)(y), 0.2))
        else:
            y = x + _conv(self.in_chans, "conv_last", self.dtype)(body)
        y = y.astype(jnp.float32) / self.img_range + mean
        scale = self.upscale if self.upsampler else 1
        return y[:, :height * scale, :width * scale, :]

    def _upsample(self, y: jax.Array, num_feat: int) -> jax.Array:
        scale = self.upscale
        if scale & (scale - 1) == 0:
            for i in range(int(math.log2(scale))):
                y = pixel_shuffle(_conv(4 * num_feat, f"upsample_{2 * i}", self.dtype)(y), 2)
            return y
        if scale == 3:
            return pixel_shuffle(_conv(9 * num_feat, "upsample_0", self.dtype)(y), 3)
        raise ValueError(f"scale {scale} is not supported; use a power of 2 or 3")

    def _features(self, x: jax.Array, deterministic: bool) -> jax.Array:
        b, h, w, c = x.shape
        tokens = x.reshape(b, h * w, c)
        if self.patch_norm:
            tokens = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="patch_embed_norm")(tokens)
        rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths))
        window, shift_size = self.window_size, self.window_size // 2
        if self.img_size <= window:  # as the original: the window shrinks to the nominal image size
            window, shift_size = self.img_size, 0
        block = nn.remat(SwinTransformerBlock, static_argnums=(2, 3)) if self.remat else SwinTransformerBlock
        start = 0
        for i, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            residual = tokens
            for j in range(depth):
                tokens = block(c, heads, window, 0 if j % 2 == 0 else shift_size, self.mlp_ratio, self.qkv_bias,
                               self.qk_scale, float(rates[start + j]), self.dtype,
                               name=f"layers_{i}_residual_group_blocks_{j}")(tokens, (h, w), deterministic)
            start += depth
            image = tokens.reshape(b, h, w, c)
            tokens = _residual_conv(image, c, self.resi_connection, f"layers_{i}_conv", self.dtype).reshape(b, h * w, c)
            tokens = tokens + residual
        tokens = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm")(tokens)
        return tokens.reshape(b, h, w, c)
