"""Building blocks shared by the metrics: input checks, colour conversions, filters, safe roots.

Every function takes NHWC arrays. Colour conversions work on [0, 1] RGB and return [0, 1] values
(the 8-bit conventions of MATLAB are reproduced by scaling by 255 inside, never at the boundary).
"""

from __future__ import annotations

import math
from typing import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = [
    "YIQ_3DEC", "YIQ_NTSC", "check_pair", "conv2_box_downsample", "downsample_factor", "gaussian_kernel_1d",
    "matlab_box_downsample", "quantize_8bit", "rgb_to_gray", "rgb_to_luma", "rgb_to_y", "round_half_up",
    "safe_power", "scharr_magnitude", "separable_filter_valid", "similarity", "to_colour_space",
]

# MATLAB rgb2gray: the first row of the inverse of the NTSC (YIQ) matrix.
MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)
# ITU-R BT.601 luma (the Y of YIQ), as GMSD and piq use.
BT601_LUMA = (0.299, 0.587, 0.114)
# MATLAB rgb2ycbcr (BT.601, limited range): Y = 16 + (65.481 R + 128.553 G + 24.966 B), RGB in [0, 1].
BT601_Y_LIMITED = (65.481, 128.553, 24.966)
# RGB -> YIQ rows (Y is BT.601 luma): with three decimals as FeatureSIM.m and HaarPSI.m write them, and with
# the four of the NTSC matrix that piq's rgb2yiq uses.
YIQ_3DEC = (BT601_LUMA, (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
YIQ_NTSC = (BT601_LUMA, (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def check_pair(metric: str, x: jax.Array, y: jax.Array, *, channels: Sequence[int] = (3,),
               min_size: int = 1, keep_shared: bool = False) -> tuple[jax.Array, jax.Array]:
    """Checks shapes (static) and returns both inputs as float32.

    ``y`` is either a batch of the same shape as ``x`` or one image shared by the whole batch (a reference
    scored against several distorted versions of it). A shared ``y`` is broadcast to ``x``'s shape, unless
    ``keep_shared`` (metrics that compute the reference's features once and broadcast those).

    Raises :class:`InputError` naming the metric when the inputs are not NHWC batches of the same shape with
    an accepted channel count, or are smaller than ``min_size`` on either side.
    """
    x, y = jnp.asarray(x), jnp.asarray(y)
    if x.ndim != 4 or y.ndim != 4:
        raise InputError(f"{metric}: expected NHWC batches (4 dimensions), got shapes {x.shape} and {y.shape}")
    shared = y.shape[0] == 1 and x.shape[0] != 1 and x.shape[1:] == y.shape[1:]
    if x.shape != y.shape and not shared:
        raise InputError(f"{metric}: inputs differ in shape: {x.shape} vs {y.shape} (a reference shared by the "
                         "batch has batch size 1)")
    if x.shape[-1] not in channels:
        raise InputError(f"{metric}: expected {' or '.join(map(str, channels))} channels (NHWC), got shape {x.shape}")
    if min(x.shape[1:3]) < min_size:
        raise InputError(f"{metric}: images must be at least {min_size} x {min_size} pixels, got {x.shape[1:3]}")
    for name, a in (("x", x), ("y", y)):
        if not (jnp.issubdtype(a.dtype, jnp.floating)):
            raise InputError(f"{metric}: {name} must be a float array in [0, 1], got dtype {a.dtype}")
    if shared and not keep_shared:
        y = jnp.broadcast_to(y, x.shape)
    return x.astype(jnp.float32), y.astype(jnp.float32)


def round_half_up(x: jax.Array) -> jax.Array:
    """Rounds non-negative values half away from zero, as MATLAB's ``round`` and uint8 casts do."""
    return jnp.floor(x + 0.5)


def quantize_8bit(x: jax.Array) -> jax.Array:
    """Rounds a [0, 1] image to the 8-bit grid (as ``im2uint8``), keeping the [0, 1] scale."""
    return round_half_up(jnp.clip(x, 0.0, 1.0) * 255.0) / 255.0


def _weighted_sum(x: jax.Array, weights: Sequence[float]) -> jax.Array:
    # A contraction over channels (a dot is far faster than a fused channel-sum on XLA:CPU); HIGHEST keeps
    # it float32 on TPU and GPU.
    w = jnp.asarray(weights, jnp.float32)
    return jnp.einsum("...c,c->...", x, w, precision=jax.lax.Precision.HIGHEST)[..., None]


def _uint8_combination(x8: jax.Array, weights: Sequence[float], offset: float = 0.0) -> jax.Array:
    """``round_half_up(offset + sum_i w_i * x8_i)`` as MATLAB computes it (in double) for uint8 images.

    Evaluated in float32 without double-rounding errors: each weight is split as ``hi + lo`` with ``hi``
    on a 2^-12 grid, so ``x8 * hi`` and their sum are exact; only the small ``lo`` part is rounded, and
    the half-way decision is taken on the exact fraction. (A plain float32 sum misrounds 30 of the
    16.7 million RGB colours of ``rgb2gray``.)
    """
    hi = [round(w * 4096.0) / 4096.0 for w in weights]
    lo = [w - h for w, h in zip(weights, hi)]
    channels = [x8[..., i:i + 1] for i in range(3)]
    exact = offset + 0.5 + (hi[0] * channels[0] + hi[1] * channels[1] + hi[2] * channels[2])
    small = lo[0] * channels[0] + lo[1] * channels[1] + lo[2] * channels[2]
    base = jnp.floor(exact)
    remainder = (exact - base) + small
    return base + (remainder >= 1.0) - (remainder < 0.0)


def rgb_to_gray(x: jax.Array, *, quantize: bool) -> jax.Array:
    """MATLAB ``rgb2gray``; with ``quantize`` the input is taken to 8 bits and the result rounded to
    uint8, as MATLAB does on uint8 images. Returns N x H x W x 1 in [0, 1]."""
    if quantize:
        x8 = round_half_up(jnp.clip(x, 0.0, 1.0) * 255.0)
        return _uint8_combination(x8, MATLAB_GRAY) / 255.0
    return _weighted_sum(x, MATLAB_GRAY)


def rgb_to_y(x: jax.Array, *, quantize: bool = False) -> jax.Array:
    """Y of MATLAB ``rgb2ycbcr`` (BT.601, limited range 16-235), on the [0, 1] scale (Y8 / 255).

    With ``quantize`` the input is taken to 8 bits and Y is rounded to uint8, as MATLAB does on uint8
    images; without it, Y is left unrounded, as BasicSR's ``bgr2ycbcr(y_only=True)`` does.
    """
    if quantize:
        x8 = round_half_up(jnp.clip(x, 0.0, 1.0) * 255.0)
        return _uint8_combination(x8, [w / 255.0 for w in BT601_Y_LIMITED], offset=16.0) / 255.0
    return (16.0 + _weighted_sum(x, BT601_Y_LIMITED)) / 255.0


def rgb_to_luma(x: jax.Array) -> jax.Array:
    """Full-range BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` (the Y of YIQ), unrounded."""
    return _weighted_sum(x, BT601_LUMA)


def to_colour_space(x: jax.Array, colour: str, *, quantize: bool) -> jax.Array:
    """The channel set a structural metric compares: ``gray`` (MATLAB rgb2gray), ``y`` (BT.601
    limited-range Y) or ``rgb`` (each channel)."""
    if colour == "gray":
        return rgb_to_gray(x, quantize=quantize)
    if colour == "y":
        return rgb_to_y(x, quantize=quantize)
    if colour == "rgb":
        return quantize_8bit(x) if quantize else x
    raise InputError(f"colour must be 'gray', 'y' or 'rgb', got {colour!r}")


def gaussian_kernel_1d(size: int, sigma: float) -> np.ndarray:
    """Normalised 1-D Gaussian; its outer product is MATLAB ``fspecial('gaussian', size, sigma)``."""
    if size % 2 != 1 or size < 1:
        raise InputError(f"kernel size must be odd and positive, got {size}")
    coords = np.arange(size, dtype=np.float64) - (size - 1) / 2.0
    g = np.exp(-(coords ** 2) / (2.0 * sigma ** 2))
    return g / g.sum()


def separable_filter_valid(x: jax.Array, kernel_1d: np.ndarray) -> jax.Array:
    """Correlates every channel of ``x`` (NHWC) with ``outer(kernel_1d, kernel_1d)``, 'valid' borders."""
    return correlate1d(correlate1d(x, kernel_1d, axis=1), kernel_1d, axis=2)


def matlab_box_downsample(x: jax.Array, factor: int) -> jax.Array:
    """MATLAB ``imfilter(x, ones(f)/f^2, 'symmetric', 'same')`` followed by ``x(1:f:end, 1:f:end)``.

    The box starts ``floor((f + 1) / 2) - 1`` pixels before each kept pixel (MATLAB's kernel centre);
    symmetric padding repeats the edge pixels. Output sides are ``ceil(side / f)``.
    """
    if factor == 1:
        return x
    before = (factor + 1) // 2 - 1
    after = factor - 1 - before
    padded = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), mode="symmetric")
    summed = jax.lax.reduce_window(padded, 0.0, jax.lax.add, (1, factor, factor, 1), (1, factor, factor, 1), "VALID")
    return summed / float(factor * factor)


def downsample_factor(height: int, width: int) -> int:
    """The authors' automatic downsampling factor ``max(1, round(min(H, W) / 256))`` (MATLAB ``round``), of
    ``ssim.m`` (2009), ``FeatureSIM.m``, ``VSI.m`` and ``MDSI.m``."""
    return max(1, matlab_round(min(height, width) / 256.0))


def conv2_box_downsample(x: jax.Array, factor: int) -> jax.Array:
    """MATLAB ``conv2(x, ones(f) / f^2, 'same')`` (zero padding) then ``x(1:f:end, 1:f:end)``, per channel.

    The box covers ``(f - 1) // 2`` pixels before each kept pixel and ``f // 2`` after; output sides are
    ``ceil(side / f)``. (:func:`matlab_box_downsample` is the ``imfilter(..., 'symmetric')`` form.)
    """
    if factor == 1:
        return x
    before, after = (factor - 1) // 2, factor // 2
    padded = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    summed = jax.lax.reduce_window(padded, 0.0, jax.lax.add, (1, factor, factor, 1), (1, factor, factor, 1), "VALID")
    return summed / float(factor * factor)


def scharr_magnitude(x: jax.Array) -> jax.Array:
    """Gradient magnitude of each channel of NHWC ``x`` with the Scharr kernels ``[3 0 -3; 10 0 -10; 3 0 -3] / 16``
    and its transpose, MATLAB ``conv2(..., 'same')`` (zero padding; the sign does not matter); gradient 0
    where the magnitude is 0."""
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    smooth, diff = (3 / 16, 10 / 16, 3 / 16), (1.0, 0.0, -1.0)
    along_w = correlate1d(correlate1d(padded, smooth, axis=1), diff, axis=2)
    along_h = correlate1d(correlate1d(padded, diff, axis=1), smooth, axis=2)
    return safe_sqrt(jnp.square(along_w) + jnp.square(along_h))


def similarity(a: jax.Array, b: jax.Array, constant: float) -> jax.Array:
    """The similarity ``(2 a b + C) / (a^2 + b^2 + C)`` of SSIM's luminance term, GMSD, FSIM, VSI, ..."""
    return (2.0 * a * b + constant) / (jnp.square(a) + jnp.square(b) + constant)


def safe_power(base: jax.Array, exponent: jax.Array | float) -> jax.Array:
    """``max(base, 0) ** exponent`` for 0 < exponent < 1 with a zero (finite) gradient where base <= 0;
    NaN stays NaN."""
    positive = base > 0
    return jnp.where(positive, jnp.power(jnp.where(positive, base, 1.0), exponent),
                     jnp.where(jnp.isnan(base), base, 0.0))


def matlab_round(value: float) -> int:
    """MATLAB ``round`` of a non-negative scalar (half away from zero)."""
    return int(math.floor(value + 0.5))
