"""ResNet (He et al. 2016) in the torchvision / timm layout (v1.5: the stride sits on the 3 x 3
convolution), returning named taps.

Taps: ``stem`` (after the first convolution, stride 2), ``layer1`` .. ``layer4`` (strides 4, 8, 16, 32)
and ``pool`` (global average, N x 1 x 1 x C). Parameter names follow torchvision's
(``conv1``, ``bn1``, ``layer1_0/conv1``, ``layer1_0/downsample_0`` ...), so both torchvision and timm
checkpoints convert by name.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize
from asym_jax.models.layers import BatchNorm

__all__ = ["RESNET_DEPTHS", "ResNet"]

RESNET_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
_TAPS = ("stem", "layer1", "layer2", "layer3", "layer4", "pool")
_kaiming = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def _conv(features: int, kernel: int, stride: int, name: str, dtype: Any, precision: Any) -> nn.Conv:
    pad = kernel // 2
    return nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                   use_bias=False, kernel_init=_kaiming, dtype=dtype, precision=precision, name=name)


class Bottleneck(nn.Module):
    width: int
    stride: int
    downsample: bool
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool) -> jax.Array:
        out_features = 4 * self.width
        h = nn.relu(BatchNorm(dtype=self.dtype, name="bn1")(
            _conv(self.width, 1, 1, "conv1", self.dtype, self.precision)(x), train))
        h = nn.relu(BatchNorm(dtype=self.dtype, name="bn2")(
            _conv(self.width, 3, self.stride, "conv2", self.dtype, self.precision)(h), train))
        h = BatchNorm(dtype=self.dtype, name="bn3")(_conv(out_features, 1, 1, "conv3", self.dtype, self.precision)(h), train)
        shortcut = x
        if self.downsample:
            shortcut = _conv(out_features, 1, self.stride, "downsample_0", self.dtype, self.precision)(x)
            shortcut = BatchNorm(dtype=self.dtype, name="downsample_1")(shortcut, train)
        return nn.relu(h + shortcut)


class ResNet(nn.Module):
    """ResNet-50/101/152 trunk; input a [0, 1] NHWC image (ImageNet normalisation inside).

    ``train=True`` uses batch statistics in the batch norms (make ``batch_stats`` mutable).
    """

    depth: int = 50
    taps: Sequence[str] = ("layer1", "layer2", "layer3", "layer4")
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        if self.depth not in RESNET_DEPTHS:
            raise InputError(f"ResNet depth must be one of {sorted(RESNET_DEPTHS)}, got {self.depth}")
        unknown = [t for t in self.taps if t not in _TAPS]
        if unknown or not self.taps:
            raise InputError(f"unknown ResNet taps {unknown}; known: {list(_TAPS)}")
        wanted, out = set(self.taps), {}
        h = normalize(x, self.mean, self.std).astype(self.dtype)
        h = nn.relu(BatchNorm(dtype=self.dtype, name="bn1")(_conv(64, 7, 2, "conv1", self.dtype, self.precision)(h), train))
        if "stem" in wanted:
            out["stem"] = h
        h = nn.max_pool(h, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
        for stage, blocks in enumerate(RESNET_DEPTHS[self.depth], 1):
            if len(out) == len(wanted):
                break
            width = 64 * 2 ** (stage - 1)
            for block in range(blocks):
                stride = 2 if (block == 0 and stage > 1) else 1
                h = Bottleneck(width, stride, block == 0, self.dtype, self.precision,
                               name=f"layer{stage}_{block}")(h, train)
            if f"layer{stage}" in wanted:
                out[f"layer{stage}"] = h
        if "pool" in wanted:
            out["pool"] = jnp.mean(h.astype(jnp.float32), axis=(1, 2), keepdims=True).astype(h.dtype)
        return out
