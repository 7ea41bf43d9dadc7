"""Swin Transformer (Liu et al. 2021) in timm's layout (``swin_tiny_patch4_window7_224``), named taps.

Taps: ``stage1`` .. ``stage4`` (NHWC, strides 4, 8, 16, 32) and ``norm`` (stage 4 after the final
LayerNorm). As timm, a stage whose nominal resolution (from ``img_size``) fits in one window uses that
window without shifting; other input sizes are zero-padded to window multiples after the cyclic shift,
with masks computed for the padded size (timm's ``dynamic_mask``). Parameter names follow timm
(``patch_embed_proj``, ``layers_0_blocks_0/attn/qkv``, ``layers_1_downsample_reduction`` ...).
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize
from asym_jax.models.layers import drop_path
from asym_jax.models.window_attention import WindowAttention, shift_mask, window_partition, window_reverse

__all__ = ["SwinTransformer"]

_trunc = nn.initializers.truncated_normal(0.02)


class SwinBlock(nn.Module):
    dim: int
    num_heads: int
    window: int
    shift: int
    mlp_ratio: float = 4.0
    drop_path: float = 0.0
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        b, h, w, c = x.shape
        y = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm1")(x)
        if self.shift:
            y = jnp.roll(y, (-self.shift, -self.shift), axis=(1, 2))
        pad_h, pad_w = (-h) % self.window, (-w) % self.window
        y = jnp.pad(y, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)))
        hp, wp = h + pad_h, w + pad_w
        mask = jnp.asarray(shift_mask(hp, wp, self.window, self.shift)) if self.shift else None
        windows = WindowAttention(c, self.window, self.num_heads, dtype=self.dtype, precision=self.precision,
                                  name="attn")(
            window_partition(y, self.window), mask)
        y = window_reverse(windows, self.window, hp, wp)[:, :h, :w]
        if self.shift:
            y = jnp.roll(y, (self.shift, self.shift), axis=(1, 2))
        x = x + drop_path(self, y, self.drop_path, deterministic)
        y = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm2")(x)
        y = nn.Dense(int(c * self.mlp_ratio), kernel_init=_trunc, dtype=self.dtype, precision=self.precision,
                     name="mlp_fc1")(y)
        y = nn.Dense(c, kernel_init=_trunc, dtype=self.dtype, precision=self.precision,
                     name="mlp_fc2")(nn.gelu(y, approximate=False))
        return x + drop_path(self, y, self.drop_path, deterministic)


class SwinTransformer(nn.Module):
    """Swin trunk; input a [0, 1] NHWC image (ImageNet normalisation inside). Swin-T is the default."""

    img_size: int = 224
    patch_size: int = 4
    embed_dim: int = 96
    depths: Sequence[int] = (2, 2, 6, 2)
    num_heads: Sequence[int] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    drop_path_rate: float = 0.0
    taps: Sequence[str] = ("stage1", "stage2", "stage3", "stage4")
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32
    precision: Any = None            # of every matmul and convolution (jax.lax.Precision)

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        known = [f"stage{i}" for i in range(1, len(self.depths) + 1)] + ["norm"]
        unknown = [t for t in self.taps if t not in known]
        if unknown or not self.taps:
            raise InputError(f"unknown Swin taps {unknown}; known: {known}")
        if x.shape[1] % self.patch_size or x.shape[2] % self.patch_size:
            raise InputError(f"Swin: input sides must be multiples of the patch size {self.patch_size}, got {x.shape}")
        wanted, out = set(self.taps), {}
        h = normalize(x, self.mean, self.std).astype(self.dtype)
        h = nn.Conv(self.embed_dim, (self.patch_size,) * 2, strides=(self.patch_size,) * 2, padding="VALID",
                    dtype=self.dtype, precision=self.precision, name="patch_embed_proj")(h)
        h = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="patch_embed_norm")(h)
        rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths)).tolist()
        start, dim = 0, self.embed_dim
        for stage, (depth, heads) in enumerate(zip(self.depths, self.num_heads)):
            if stage > 0:
                dim *= 2
                h = jnp.pad(h, ((0, 0), (0, h.shape[1] % 2), (0, h.shape[2] % 2), (0, 0)))
                b, hh, ww, c = h.shape
                # timm's PatchMerging order: (0, 0), (1, 0), (0, 1), (1, 1) offsets in (row, column)
                h = h.reshape(b, hh // 2, 2, ww // 2, 2, c).transpose(0, 1, 3, 4, 2, 5).reshape(b, hh // 2, ww // 2, 4 * c)
                h = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name=f"layers_{stage}_downsample_norm")(h)
                h = nn.Dense(dim, use_bias=False, kernel_init=_trunc, dtype=self.dtype, precision=self.precision,
                             name=f"layers_{stage}_downsample_reduction")(h)
            nominal = self.img_size // self.patch_size // 2 ** stage
            window = min(self.window_size, nominal)
            shift = 0 if nominal <= self.window_size else self.window_size // 2
            for block in range(depth):
                h = SwinBlock(dim, heads, window, 0 if block % 2 == 0 else shift, self.mlp_ratio, rates[start + block],
                              self.dtype, self.precision, name=f"layers_{stage}_blocks_{block}")(h, not train)
            start += depth
            if f"stage{stage + 1}" in wanted:
                out[f"stage{stage + 1}"] = h
        if "norm" in wanted:
            out["norm"] = nn.LayerNorm(use_fast_variance=False, epsilon=1e-5, dtype=self.dtype, name="norm")(h)
        return out
