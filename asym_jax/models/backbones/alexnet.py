"""AlexNet feature extractor (torchvision ``alexnet().features``) with named taps.

Taps: ``conv1..conv5`` (before the ReLU) and ``relu1..relu5`` (after it). Parameters are
``{"conv1": {"kernel": (11, 11, 3, 64), "bias": (64,)}, ...}``.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from asym_jax.models.backbones.common import IMAGENET_MEAN, IMAGENET_STD, normalize

__all__ = ["AlexNet", "ALEXNET_LAYERS"]

# name: (channels, kernel, stride, padding, max-pool 3x3/2 before this layer)
ALEXNET_LAYERS = {
    "conv1": (64, 11, 4, 2, False),
    "conv2": (192, 5, 1, 2, True),
    "conv3": (384, 3, 1, 1, True),
    "conv4": (256, 3, 1, 1, False),
    "conv5": (256, 3, 1, 1, False),
}


class AlexNet(nn.Module):
    """AlexNet trunk returning named taps; input is a [0, 1] NHWC image, normalised inside."""

    taps: Sequence[str] = ("relu1", "relu2", "relu3", "relu4", "relu5")
    mean: Sequence[float] = IMAGENET_MEAN
    std: Sequence[float] = IMAGENET_STD
    dtype: Any = jnp.float32
    precision: Any = None

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> dict[str, jax.Array]:
        del train  # no batch statistics or dropout in the feature trunk
        known = {p + str(i) for p in ("conv", "relu") for i in range(1, 6)}
        unknown = [t for t in self.taps if t not in known]
        if unknown or not self.taps:
            raise ValueError(f"unknown AlexNet taps {unknown}; known: {sorted(known)}")
        wanted = set(self.taps)
        out: dict[str, jax.Array] = {}
        h = normalize(x, self.mean, self.std).astype(self.dtype)
        for name, (channels, kernel, stride, pad, pool_before) in ALEXNET_LAYERS.items():
            if pool_before:
                h = nn.max_pool(h, (3, 3), strides=(2, 2))
            # PyTorch's default Conv2d initialisation (torchvision keeps it for AlexNet): weights and
            # biases uniform in +-1/sqrt(fan_in).
            bound = (h.shape[-1] * kernel * kernel) ** -0.5
            h = nn.Conv(channels, (kernel, kernel), strides=(stride, stride), padding=((pad, pad), (pad, pad)),
                        kernel_init=nn.initializers.variance_scaling(1.0 / 3.0, "fan_in", "uniform"),
                        bias_init=lambda key, shape, dtype=jnp.float32, b=bound: jax.random.uniform(
                            key, shape, dtype, -b, b),
                        dtype=self.dtype, precision=self.precision, name=name)(h)
            index = name[-1]
            if "conv" + index in wanted:
                out["conv" + index] = h
            h = nn.relu(h)
            if "relu" + index in wanted:
                out["relu" + index] = h
            if len(out) == len(wanted):
                break
        return out
