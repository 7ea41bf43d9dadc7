"""Pixel metrics: PSNR (RGB and Y), L1, MSE and Charbonnier. Per-image values, NHWC in [0, 1]."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair, rgb_to_y

__all__ = ["charbonnier", "l1", "mse", "psnr", "psnr_y"]

# MSE floor: caps PSNR at 100 dB for identical images and keeps the gradient finite there.
_MSE_FLOOR = 1e-10


def _crop(x: jax.Array, border: int) -> jax.Array:
    if border < 0:
        raise InputError(f"crop_border must be >= 0, got {border}")
    if border == 0:
        return x
    if 2 * border >= min(x.shape[1:3]):
        raise InputError(f"crop_border={border} leaves nothing of a {x.shape[1]} x {x.shape[2]} image")
    return x[:, border:-border, border:-border, :]


def _psnr_from_mse(mse_value: jax.Array) -> jax.Array:
    return -10.0 * jnp.log10(jnp.maximum(mse_value, _MSE_FLOOR))


@functools.partial(jax.jit, static_argnames=("crop_border",))
def psnr(x: jax.Array, y: jax.Array, *, crop_border: int = 0) -> jax.Array:
    """PSNR in dB over all RGB values, data range 1 (identical images give 100 dB, not inf)."""
    x, y = check_pair("psnr", x, y)
    x, y = _crop(x, crop_border), _crop(y, crop_border)
    return _psnr_from_mse(jnp.mean(jnp.square(x - y), axis=(1, 2, 3)))


@functools.partial(jax.jit, static_argnames=("crop_border",))
def psnr_y(x: jax.Array, y: jax.Array, *, crop_border: int = 0) -> jax.Array:
    """PSNR in dB of the Y channel of MATLAB ``rgb2ycbcr`` (BT.601, limited range), peak 255.

    Y is not rounded (BasicSR's ``calculate_psnr(..., test_y_channel=True)``); super-resolution tables
    use ``crop_border=scale``.
    """
    x, y = check_pair("psnr_y", x, y)
    x, y = _crop(rgb_to_y(x), crop_border), _crop(rgb_to_y(y), crop_border)
    return _psnr_from_mse(jnp.mean(jnp.square(x - y), axis=(1, 2, 3)))


@jax.jit
def l1(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean absolute error per image."""
    x, y = check_pair("l1", x, y, channels=(1, 3))
    return jnp.mean(jnp.abs(x - y), axis=(1, 2, 3))


@jax.jit
def mse(x: jax.Array, y: jax.Array) -> jax.Array:
    """Mean squared error per image."""
    x, y = check_pair("mse", x, y, channels=(1, 3))
    return jnp.mean(jnp.square(x - y), axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=("eps",))
def charbonnier(x: jax.Array, y: jax.Array, *, eps: float = 1e-12) -> jax.Array:
    """Mean of ``sqrt((x - y)^2 + eps)`` per image (BasicSR's ``CharbonnierLoss``, eps 1e-12)."""
    x, y = check_pair("charbonnier", x, y, channels=(1, 3))
    return jnp.mean(jnp.sqrt(jnp.square(x - y) + eps), axis=(1, 2, 3))
