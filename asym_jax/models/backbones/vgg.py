"""VGG-16 / VGG-19 feature extractors with named taps, and L2 pooling (DISTS).

Layer names follow the VGG paper: block ``b`` (1..5), convolution ``i`` inside the block. A tap is
``conv{b}_{i}`` (before the ReLU), ``relu{b}_{i}`` (after it) or ``pool{b}`` (after the block's
pooling). Parameters are ``{"conv1_1": {"kernel": (3, 3, Cin, Cout), "bias": (Cout,)}, ...}``.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize
from asym_jax.ops import correlate1d

__all__ = ["VGG", "VGG_BLOCKS", "l2_pool", "vgg_layer_names"]

# (convolutions per block, channels) for each depth.
VGG_BLOCKS = {
    16: ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
    19: ((2, 64), (2, 128), (4, 256), (4, 512), (4, 512)),
}


def vgg_layer_names(depth: int) -> list[str]:
    """Convolution names in forward order, e.g. ``conv1_1, conv1_2, conv2_1, ...``."""
    return [f"conv{b}_{i}" for b, (n, _) in enumerate(VGG_BLOCKS[depth], 1) for i in range(1, n + 1)]


# Hanning window of length 5 without its zero end points, (0.5, 1, 0.5); its outer product normalised
# to sum 1 is the outer product of (0.25, 0.5, 0.25) with itself.
_L2_TAPS = (0.25, 0.5, 0.25)


def l2_pool(x: jax.Array) -> jax.Array:
    """DISTS L2 pooling: ``sqrt(hann3x3 * x^2 + 1e-12)``, stride 2, zero padding 1, per channel."""
    squared = jnp.pad(jnp.square(x), ((0, 0), (1, 1), (1, 1), (0, 0)))
    pooled = correlate1d(correlate1d(squared, _L2_TAPS, axis=1, stride=2), _L2_TAPS, axis=2, stride=2)
    return jnp.sqrt(pooled + 1e-12)


class VGG(nn.Module):
    """VGG trunk (torchvision ``vgg16().features`` / ``vgg19().features``) returning named taps.

    Attributes:
      depth: 16 or 19.
      taps: names of the activations to return; the network stops after the last one.
      pooling: ``"max"`` (2x2, stride 2, as torchvision) or ``"l2"`` (DISTS L2 pooling).
      mean, std: input normalisation applied to the [0, 1] input (ImageNet statistics by default).
      dtype: compute dtype; parameters stay float32.
      precision: ``jax.lax.Precision`` of the convolutions.
    """

    depth: int = 16
    taps: Sequence[str] = ("relu1_2", "relu2_2", "relu3_3", "relu4_3", "relu5_3")
    pooling: str = "max"
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32
    precision: Any = None

    def _check(self) -> None:
        if self.depth not in VGG_BLOCKS:
            raise ValueError(f"VGG depth must be 16 or 19, got {self.depth}")
        if self.pooling not in ("max", "l2"):
            raise ValueError(f"VGG pooling must be 'max' or 'l2', got {self.pooling!r}")
        known = set()
        for b, (n, _) in enumerate(VGG_BLOCKS[self.depth], 1):
            known.add(f"pool{b}")
            for i in range(1, n + 1):
                known.update({f"conv{b}_{i}", f"relu{b}_{i}"})
        unknown = [t for t in self.taps if t not in known]
        if unknown or not self.taps:
            raise ValueError(f"unknown VGG-{self.depth} taps {unknown}; known: {sorted(known)}")

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        del train  # no batch statistics or dropout in the feature trunk
        self._check()
        wanted = set(self.taps)
        out: dict[str, jax.Array] = {}
        h = normalize(x, self.mean, self.std).astype(self.dtype)
        for b, (n, channels) in enumerate(VGG_BLOCKS[self.depth], 1):
            for i in range(1, n + 1):
                h = nn.Conv(channels, (3, 3), padding=((1, 1), (1, 1)), dtype=self.dtype,
                            kernel_init=nn.initializers.variance_scaling(2.0, "fan_out", "normal"),
                            precision=self.precision, name=f"conv{b}_{i}")(h)
                if f"conv{b}_{i}" in wanted:
                    out[f"conv{b}_{i}"] = h
                h = nn.relu(h)
                if f"relu{b}_{i}" in wanted:
                    out[f"relu{b}_{i}"] = h
                if len(out) == len(wanted):
                    return out
            if self.pooling == "max":
                h = nn.max_pool(h, (2, 2), strides=(2, 2))
            else:
                h = l2_pool(h)
            if f"pool{b}" in wanted:
                out[f"pool{b}"] = h
                if len(out) == len(wanted):
                    return out
        return out
