"""Shifted-window self-attention (Swin), shared by SwinIR and the Swin-T backbone.

Names follow the PyTorch modules (``qkv``, ``proj``, ``relative_position_bias_table``); the relative
position index and the shift masks are recomputed, not loaded.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["WindowAttention", "relative_position_index", "shift_mask", "window_partition", "window_reverse"]

_trunc_normal = nn.initializers.truncated_normal(stddev=0.02)


def relative_position_index(window: int) -> np.ndarray:
    coords = np.stack(np.meshgrid(np.arange(window), np.arange(window), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0) + (window - 1)
    return relative[..., 0] * (2 * window - 1) + relative[..., 1]


def window_partition(x: jax.Array, window: int) -> jax.Array:
    b, h, w, c = x.shape
    x = x.reshape(b, h // window, window, w // window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, window * window, c)


def window_reverse(windows: jax.Array, window: int, h: int, w: int) -> jax.Array:
    c = windows.shape[-1]
    x = windows.reshape(-1, h // window, w // window, window, window, c).transpose(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def shift_mask(h: int, w: int, window: int, shift: int) -> np.ndarray:
    """(num_windows, window^2, window^2) additive mask: -100 between positions of different regions."""
    regions = np.zeros((h, w), np.float32)
    count = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            regions[hs, ws] = count
            count += 1
    windows = regions.reshape(h // window, window, w // window, window).transpose(0, 2, 1, 3).reshape(-1, window * window)
    diff = windows[:, None, :] - windows[:, :, None]
    return np.where(diff != 0, -100.0, 0.0).astype(np.float32)


class WindowAttention(nn.Module):
    dim: int
    window: int
    num_heads: int
    qkv_bias: bool = True
    qk_scale: float | None = None
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array | None) -> jax.Array:
        b, n, c = x.shape
        head_dim = c // self.num_heads
        scale = self.qk_scale or head_dim ** -0.5
        table = self.param("relative_position_bias_table", _trunc_normal,
                           ((2 * self.window - 1) ** 2, self.num_heads))
        qkv = nn.Dense(3 * c, use_bias=self.qkv_bias, kernel_init=_trunc_normal, dtype=self.dtype,
                       precision=self.precision, name="qkv")(x)
        qkv = qkv.reshape(b, n, 3, self.num_heads, head_dim).transpose(2, 0, 3, 1, 4)
        q, k, v = qkv[0] * scale, qkv[1], qkv[2]
        attn = jnp.einsum("bhqd,bhkd->bhqk", q, k, precision=self.precision)
        bias = table[relative_position_index(self.window).reshape(-1)].reshape(n, n, -1).transpose(2, 0, 1)
        attn = attn + bias[None].astype(attn.dtype)
        if mask is not None:
            num_windows = mask.shape[0]
            attn = attn.reshape(b // num_windows, num_windows, self.num_heads, n, n) + mask[None, :, None].astype(attn.dtype)
            attn = attn.reshape(b, self.num_heads, n, n)
        attn = jax.nn.softmax(attn.astype(jnp.float32), axis=-1).astype(self.dtype)
        out = jnp.einsum("bhqk,bhkd->bqhd", attn, v, precision=self.precision).reshape(b, n, c)
        return nn.Dense(c, kernel_init=_trunc_normal, dtype=self.dtype, precision=self.precision, name="proj")(out)
