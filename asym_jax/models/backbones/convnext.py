"""ConvNeXt (Liu et al. 2022) in timm's layout, returning named taps.

Taps: ``stem`` (stride 4) and ``stage1`` .. ``stage4`` (strides 4, 8, 16, 32; timm's ``stages.0..3``).
Parameter names follow timm (``stem_0``, ``stem_1``, ``stages_1_downsample_0``,
``stages_0_blocks_0/conv_dw`` ...). Presets: ConvNeXt-T ``depths=(3, 3, 9, 3), dims=(96, 192, 384, 768)``.
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

__all__ = ["ConvNeXt"]

_trunc = nn.initializers.truncated_normal(0.02)


class ConvNeXtBlock(nn.Module):
    dim: int
    drop_path: float = 0.0
    layer_scale_init: float = 1e-6
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, deterministic: bool) -> jax.Array:
        h = nn.Conv(self.dim, (7, 7), padding=((3, 3), (3, 3)), feature_group_count=self.dim, kernel_init=_trunc,
                    dtype=self.dtype, precision=self.precision, name="conv_dw")(x)
        h = nn.LayerNorm(use_fast_variance=False, epsilon=1e-6, dtype=self.dtype, name="norm")(h)
        h = nn.Dense(4 * self.dim, kernel_init=_trunc, dtype=self.dtype, precision=self.precision, name="mlp_fc1")(h)
        h = nn.gelu(h, approximate=False)
        h = nn.Dense(self.dim, kernel_init=_trunc, dtype=self.dtype, precision=self.precision, name="mlp_fc2")(h)
        gamma = self.param("gamma", nn.initializers.constant(self.layer_scale_init), (self.dim,))
        h = h * gamma.astype(h.dtype)
        return x + drop_path(self, h, self.drop_path, deterministic)


class ConvNeXt(nn.Module):
    """ConvNeXt trunk; input a [0, 1] NHWC image (ImageNet normalisation inside)."""

    depths: Sequence[int] = (3, 3, 9, 3)
    dims: Sequence[int] = (96, 192, 384, 768)
    drop_path_rate: float = 0.0
    taps: Sequence[str] = ("stage1", "stage2", "stage3", "stage4")
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        known = ["stem"] + [f"stage{i}" for i in range(1, len(self.depths) + 1)]
        unknown = [t for t in self.taps if t not in known]
        if unknown or not self.taps:
            raise InputError(f"unknown ConvNeXt taps {unknown}; known: {known}")
        wanted, out = set(self.taps), {}
        h = normalize(x, self.mean, self.std).astype(self.dtype)
        h = nn.Conv(self.dims[0], (4, 4), strides=(4, 4), padding="VALID", kernel_init=_trunc, dtype=self.dtype,
                    precision=self.precision, name="stem_0")(h)
        h = nn.LayerNorm(use_fast_variance=False, epsilon=1e-6, dtype=self.dtype, name="stem_1")(h)
        if "stem" in wanted:
            out["stem"] = h
        rates = np.linspace(0.0, self.drop_path_rate, sum(self.depths)).tolist()
        start = 0
        for stage, (depth, dim) in enumerate(zip(self.depths, self.dims)):
            if len(out) == len(wanted):
                break
            if stage > 0:
                h = nn.LayerNorm(use_fast_variance=False, epsilon=1e-6, dtype=self.dtype, name=f"stages_{stage}_downsample_0")(h)
                h = nn.Conv(dim, (2, 2), strides=(2, 2), padding="VALID", kernel_init=_trunc, dtype=self.dtype,
                            precision=self.precision, name=f"stages_{stage}_downsample_1")(h)
            for block in range(depth):
                h = ConvNeXtBlock(dim, rates[start + block], dtype=self.dtype, precision=self.precision,
                                  name=f"stages_{stage}_blocks_{block}")(h, not train)
            start += depth
            if f"stage{stage + 1}" in wanted:
                out[f"stage{stage + 1}"] = h
        return out
