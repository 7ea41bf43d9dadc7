"""Shared pieces of the backbones: input normalisation constants."""

from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "normalize"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def normalize(x: jax.Array, mean: Sequence[float], std: Sequence[float]) -> jax.Array:
    """Maps a [0, 1] NHWC image to ``(x - mean) / std`` per channel, in float32."""
    x = jnp.asarray(x, jnp.float32)
    return (x - jnp.asarray(mean, jnp.float32)) / jnp.asarray(std, jnp.float32)
