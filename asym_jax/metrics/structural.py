"""SSIM and MS-SSIM, defaulting to Wang et al.'s reference MATLAB code on 8-bit images.

Conventions (the defaults reproduce the authors' code; every variant is an explicit option):

* ``colour="gray"``: MATLAB ``rgb2gray`` of the 8-bit image, rounded to uint8 (``quantize=True``), as
  ``ssim_index.m`` / ``msssim.m`` see an RGB image converted by MATLAB. ``"y"`` compares the BT.601
  limited-range Y (super-resolution papers, BasicSR); ``"rgb"`` averages per-channel scores (piq).
* ``quantize=False`` is the unrounded float path used as a training loss (``round`` has no gradient).
* 11 x 11 Gaussian window, sigma 1.5, 'valid' filtering, K1 = 0.01, K2 = 0.03, L = 1 on the [0, 1]
  scale (the same numbers as L = 255 on the 8-bit scale).
* ``downsample=True``: the authors' later automatic downsampling (``ssim.m``, 2009):
  ``f = max(1, round(min(H, W) / 256))``, an f x f box filter with symmetric padding, every f-th pixel.
* MS-SSIM: five scales, weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), 2 x 2 box downsampling with
  symmetric padding between scales (``msssim.m``), mean contrast-structure terms at the first four
  scales and mean SSIM at the last, combined as a weighted product per channel.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import (
    check_pair, downsample_factor, gaussian_kernel_1d, matlab_box_downsample, safe_power,
    separable_filter_valid, to_colour_space,
)

__all__ = ["MS_SSIM_WEIGHTS", "ms_ssim", "ssim", "ssim_maps"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ssim_maps(x: jax.Array, y: jax.Array, *, kernel_size: int = 11, sigma: float = 1.5,
              k1: float = 0.01, k2: float = 0.03) -> tuple[jax.Array, jax.Array]:
    """SSIM and contrast-structure maps ('valid' region) of [0, 1] NHWC images, per channel."""
    kernel = gaussian_kernel_1d(kernel_size, sigma)
    c1, c2 = k1 ** 2, k2 ** 2
    # One filtering pass over the five statistics.
    stats = separable_filter_valid(jnp.concatenate([x, y, x * x, y * y, x * y], axis=-1), kernel)
    mu_x, mu_y, e_xx, e_yy, e_xy = jnp.split(stats, 5, axis=-1)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    sigma_xx, sigma_yy, sigma_xy = e_xx - mu_xx, e_yy - mu_yy, e_xy - mu_xy
    cs = (2.0 * sigma_xy + c2) / (sigma_xx + sigma_yy + c2)
    luminance = (2.0 * mu_xy + c1) / (mu_xx + mu_yy + c1)
    return luminance * cs, cs


def _crop(x: jax.Array, border: int) -> jax.Array:
    if border < 0:
        raise InputError(f"crop_border must be >= 0, got {border}")
    return x[:, border:x.shape[1] - border, border:x.shape[2] - border, :] if border else x


@functools.partial(jax.jit, static_argnames=("colour", "quantize", "downsample", "crop_border", "kernel_size",
                                             "sigma", "k1", "k2"))
def ssim(x: jax.Array, y: jax.Array, *, colour: str = "gray", quantize: bool = True,
         downsample: bool = False, crop_border: int = 0, kernel_size: int = 11, sigma: float = 1.5,
         k1: float = 0.01, k2: float = 0.03) -> jax.Array:
    """Mean SSIM per image (higher is better, 1 for identical images).

    Args:
      x, y: N x H x W x 3 images in [0, 1].
      colour: ``"gray"`` (default), ``"y"`` or ``"rgb"``; see the module docstring. BasicSR's
        ``calculate_ssim(test_y_channel=True)`` is ``colour="y", quantize=False`` on 8-bit images.
      quantize: take the image to 8 bits first and round the grey/Y image as MATLAB does on uint8
        input (default); ``False`` for the differentiable float path.
      downsample: apply the automatic downsampling of the authors' 2009 ``ssim.m``.
      crop_border: pixels removed at each side before comparing (after colour conversion).
      kernel_size, sigma, k1, k2: window and constants (defaults of the paper).
    """
    x, y = check_pair("ssim", x, y)
    x = _crop(to_colour_space(x, colour, quantize=quantize), crop_border)
    y = _crop(to_colour_space(y, colour, quantize=quantize), crop_border)
    if downsample:
        factor = downsample_factor(*x.shape[1:3])
        x, y = matlab_box_downsample(x, factor), matlab_box_downsample(y, factor)
    if min(x.shape[1:3]) < kernel_size:
        raise InputError(f"ssim: images of {x.shape[1]} x {x.shape[2]} pixels (after cropping and "
                         f"downsampling) are smaller than the {kernel_size} x {kernel_size} window")
    ssim_map, _ = ssim_maps(x, y, kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)
    return jnp.mean(ssim_map, axis=(1, 2, 3))


@functools.partial(jax.jit, static_argnames=("colour", "quantize", "num_scales", "kernel_size", "sigma", "k1",
                                             "k2"))
def ms_ssim(x: jax.Array, y: jax.Array, *, colour: str = "gray", quantize: bool = True,
            num_scales: int = 5, kernel_size: int = 11, sigma: float = 1.5, k1: float = 0.01,
            k2: float = 0.03) -> jax.Array:
    """Multi-scale SSIM per image (higher is better, 1 for identical images).

    Negative contrast-structure (or last-scale SSIM) values would make the fractional powers complex
    (MATLAB) or NaN: they are clamped to 0, so the product is 0, and their gradient is 0, never NaN
    (the clamp that piq and pytorch-msssim apply, with a NaN-free gradient).

    Args:
      x, y: N x H x W x 3 images in [0, 1].
      colour, quantize, kernel_size, sigma, k1, k2: as in :func:`ssim`.
      num_scales: number of scales (1-5). The 11-px window at five scales needs images of at least
        161 px; ``num_scales=4`` (the first four weights, renormalised to sum to 1) works on 128-px
        training crops (at least 81 px).
    """
    if not 1 <= num_scales <= len(MS_SSIM_WEIGHTS):
        raise InputError(f"ms_ssim: num_scales must be in 1..5, got {num_scales}")
    x, y = check_pair("ms_ssim", x, y)
    min_size = (kernel_size - 1) * 2 ** (num_scales - 1) + 1
    if min(x.shape[1:3]) < min_size:
        fitting = [n for n in range(1, num_scales) if (kernel_size - 1) * 2 ** (n - 1) + 1 <= min(x.shape[1:3])]
        hint = f"; num_scales={fitting[-1]} fits these images" if fitting else ""
        raise InputError(
            f"ms_ssim: {num_scales} scales with a {kernel_size}-px window need images of at least "
            f"{min_size} x {min_size} pixels, got {x.shape[1]} x {x.shape[2]}{hint}")
    # The published weights as they are (they sum to 1.0001, as in msssim.m and piq); fewer scales take
    # the first weights renormalised to sum to 1.
    weights = np.asarray(MS_SSIM_WEIGHTS[:num_scales], np.float64)
    if num_scales < len(MS_SSIM_WEIGHTS):
        weights = weights / weights.sum()
    weights = jnp.asarray(weights, jnp.float32)
    x = to_colour_space(x, colour, quantize=quantize)
    y = to_colour_space(y, colour, quantize=quantize)
    terms = []
    for scale in range(num_scales):
        if scale > 0:
            x, y = matlab_box_downsample(x, 2), matlab_box_downsample(y, 2)
        ssim_map, cs_map = ssim_maps(x, y, kernel_size=kernel_size, sigma=sigma, k1=k1, k2=k2)
        last = scale == num_scales - 1
        terms.append(jnp.mean(ssim_map if last else cs_map, axis=(1, 2)))  # N x C
    stacked = jnp.stack(terms, axis=0)  # S x N x C
    powered = safe_power(stacked, weights[:, None, None])
    return jnp.mean(jnp.prod(powered, axis=0), axis=-1)
