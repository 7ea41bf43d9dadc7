"""CW-SSIM: complex wavelet structural similarity (Sampat, Wang, Gupta, Bovik, Markey 2009).

The default reproduces the authors' MATLAB code (``cwssim_index.m``, CW-SSIM Index 1.0) with the
parameters of its usage example, ``cwssim_index(img1, img2, 6, 16, 0, 0)``:

* grey images: an RGB input is converted with MATLAB ``rgb2gray``, unrounded (the authors' code takes a
  grey image and names no conversion; ``colour="luma"`` gives BT.601 luma ``0.299 R + 0.587 G + 0.114 B``,
  ``colour="y"`` the BT.601 limited-range Y of ``rgb2ycbcr``). Values on the 0..255 scale (``K`` is
  given on that scale; with the default ``K = 0`` the scale does not matter). No downsampling: the
  authors' code has none (the pyramid is the multi-scale part).
* Portilla and Simoncelli's complex steerable pyramid, ``buildSCFpyr(img, level, or - 1)`` of
  matlabPyrTools (see :func:`scf_pyramid`): ``level = 6`` levels, ``or = 16`` orientations.
* only the coarsest level's ``or`` bands are compared (``bandind = i + (level - 1) * or + 1``), after
  discarding ``guardb / 2^(level - 1)`` coefficients at each border (``guardb = 0``).
* per band, with a 7 x 7 uniform window (``ones(7) / 49``, 'valid'):
  ``map = (2 |sum c1 conj(c2)| + K) / (sum |c1|^2 + sum |c2|^2 + K)``, ``K = 0``; the map is pooled
  with a Gaussian weight ``fspecial('gaussian', size(map), rows / 4)`` (``rows``: the band's height
  before the guard crop; the weights sum to 1), and the ``or`` band scores are averaged.
  (With ``guardb > 0`` the authors' code sizes the weight from the uncropped band and fails on the size
  mismatch; here the weight has the map's size and the same sigma.)

``level = 6`` needs images of at least 256 x 256 pixels (buildSCFpyr's limit
``level <= floor(log2(min(H, W))) - 2``); pass a smaller ``level`` for smaller images.

Library variants: pyiqa 0.1.16's ``cw_ssim`` (a PyTorch port of the same pyramid) uses ``level=4,
orientations=8`` (guardb 0, K 0) on the BT.601 luma rounded to 8 bits (``round(255 Y)`` of YIQ):
``level=4, orientations=8, colour="luma", quantize=True`` reproduces it (measured: within 1.4e-5
relative on twelve 192 x 256 photograph pairs; the float32 luma rounds a few pixels the other way). Ding et al.'s IQA_pytorch ``CW_SSIM`` uses the same
parameters with its own pyramid (masks sampled on a real-FFT half plane, square images only), which
is not reproduced here: its scores differ from ``level=4, orientations=8`` by up to 3e-4 relative on
twelve 256 x 256 pairs (``1 - score`` by up to 4 %).

Flat windows: with ``K = 0`` the authors' map is 0 / 0 where neither window has energy in the band
(flat regions, flat images). Here ``eps`` (default 1e-6 on the 0..255 scale, a coefficient energy far
below one grey level) is added to the numerator and the denominator, as K is: a window without
energy scores 1 with a finite gradient, and on any image with texture the score moves by less than
1e-8. ``eps=0`` with ``k=0`` gives the exact formula, with such points defined as 1 (gradient 0).
Two numerical conventions keep float32 round-off out of the bands, neither changing the result: each
image's mean is removed before the transform (every band mask is 0 at zero frequency for the sizes
the pyramid accepts), and the floor of matlabPyrTools' radial lookup table, ``cos(pi / 2)`` computed
in floating point (about 6e-17), is taken as 0 (the difference on any other image is below 1e-12
relative).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair, quantize_8bit, rgb_to_gray, rgb_to_luma, rgb_to_y
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = ["cw_ssim", "scf_pyramid", "scf_pyramid_max_height"]


# ----------------------------------------------------------------------------------------------------
# Complex steerable pyramid (matlabPyrTools buildSCFpyr), frequency-domain construction.


def scf_pyramid_max_height(height: int, width: int) -> int:
    """The most levels buildSCFpyr builds for an image of this size: ``floor(log2(min)) - 2``."""
    return int(math.floor(math.log2(min(height, width)))) - 2


def _raised_cosine(twidth: float) -> tuple[np.ndarray, np.ndarray]:
    """matlabPyrTools ``rcosFn(twidth, -twidth / 2, [0 1])`` with ``Y = sqrt(Y)``: the radial
    transition (sqrt of a raised cosine in log2 frequency) as a 259-entry lookup table."""
    n = 256
    x = np.pi * np.arange(-n - 1, 2, dtype=np.float64) / (2 * n)
    y = np.cos(x) ** 2
    y[0], y[n + 2] = y[1], y[n + 1]
    x = -twidth / 2 + (2 * twidth / np.pi) * (x + np.pi / 4)
    y = np.sqrt(y)
    y[y < 1e-12] = 0.0  # cos(pi/2)^2 in floating point: the table's floor is 0 (see the module docstring)
    return x, y


def _lookup(values: np.ndarray, table_x: np.ndarray, table_y: np.ndarray) -> np.ndarray:
    """Piecewise-linear table lookup with the end segments extended (matlabPyrTools ``pointOp`` on a
    uniformly spaced table)."""
    origin, step = table_x[0], table_x[1] - table_x[0]
    pos = (values - origin) / step
    index = np.clip(np.floor(pos), 0, len(table_y) - 2).astype(np.int64)
    return table_y[index] + (table_y[index + 1] - table_y[index]) * (pos - index)


@functools.lru_cache(maxsize=32)
def _scf_plan(height: int, width: int, levels: int, orientations: int, twidth: float):
    """Constant masks of buildSCFpyr for one image size (numpy, float64).

    Returns ``(lo0mask, hi0mask, [(band_masks, (row0, col0, rows, cols), lomask), ...])``; the masks act
    on the centred (fftshift-ed) spectrum; ``band_masks`` is complex, ``orientations x h x w``, and
    includes the factor ``(-i)^(orientations - 1)``; each level's spectrum is then cropped to
    ``rows x cols`` from ``(row0, col0)`` and multiplied by ``lomask``.
    """
    dims = np.array([height, width])
    ctr = np.ceil((dims + 0.5) / 2).astype(int)  # 1-based centre (MATLAB)
    xramp, yramp = np.meshgrid((np.arange(1, width + 1) - ctr[1]) / (width / 2),
                               (np.arange(1, height + 1) - ctr[0]) / (height / 2))
    angle = np.arctan2(yramp, xramp)
    radius = np.sqrt(xramp ** 2 + yramp ** 2)
    radius[ctr[0] - 1, ctr[1] - 1] = radius[ctr[0] - 1, ctr[1] - 2]
    log_rad = np.log2(radius)

    xrcos, yrcos = _raised_cosine(twidth)
    yircos = np.sqrt(1.0 - yrcos ** 2)
    lo0mask = _lookup(log_rad, xrcos, yircos)
    hi0mask = _lookup(log_rad, xrcos, yrcos)

    # Angular masks: one lobe of sqrt(const) * 2 * cos^order, tabulated on [-2 pi - pi/1024, pi + pi/1024].
    lut = 1024
    xcosn = np.pi * np.arange(-(2 * lut + 1), lut + 2, dtype=np.float64) / lut
    order = orientations - 1
    const = (2.0 ** (2 * order)) * (math.factorial(order) ** 2) / (orientations * math.factorial(2 * order))
    alpha = np.mod(np.pi + xcosn, 2 * np.pi) - np.pi
    ycosn = 2 * np.sqrt(const) * (np.cos(xcosn) ** order) * (np.abs(alpha) < np.pi / 2)
    phase = (-1j) ** order

    plan = []
    for _ in range(levels):
        xrcos = xrcos - 1.0
        himask = _lookup(log_rad, xrcos, yrcos)
        bands = np.stack([phase * _lookup(angle, xcosn + np.pi * b / orientations, ycosn) * himask
                          for b in range(orientations)])
        dims = np.array(log_rad.shape)
        ctr = np.ceil((dims + 0.5) / 2).astype(int)
        lodims = np.ceil((dims - 0.5) / 2).astype(int)
        loctr = np.ceil((lodims + 0.5) / 2).astype(int)
        start = ctr - loctr  # 0-based
        log_rad = log_rad[start[0]:start[0] + lodims[0], start[1]:start[1] + lodims[1]]
        angle = angle[start[0]:start[0] + lodims[0], start[1]:start[1] + lodims[1]]
        lomask = _lookup(log_rad, xrcos, yircos)
        plan.append((bands, (int(start[0]), int(start[1]), int(lodims[0]), int(lodims[1])), lomask))
    return lo0mask, hi0mask, plan


def _fft_centred(x: jax.Array) -> jax.Array:
    return jnp.fft.fftshift(jnp.fft.fft2(x, axes=(-2, -1)), axes=(-2, -1))


def _ifft_centred(x: jax.Array) -> jax.Array:
    return jnp.fft.ifft2(jnp.fft.ifftshift(x, axes=(-2, -1)), axes=(-2, -1))


def scf_pyramid(x: jax.Array, levels: int, orientations: int, *, twidth: float = 1.0,
                bands_of: tuple[int, ...] | None = None) -> tuple[jax.Array, list[jax.Array | None], jax.Array]:
    """Complex steerable pyramid of real images ``x`` (``... x H x W``), as matlabPyrTools'
    ``buildSCFpyr(x, levels, orientations - 1, twidth)`` builds it (Portilla and Simoncelli 2000).

    Returns ``(highpass, bands, lowpass)``: the real high-pass residual (``... x H x W``), one complex
    array per level, ``... x orientations x h_l x w_l`` (finest first; ``h_1, w_1 = H, W``, then
    ``ceil(h / 2)`` per level), and the real low-pass residual. Band ``b`` (0-based) of a level is
    matlabPyrTools' band ``b + 1``. Float32 / complex64 (``jnp.fft``); the masks are float64 constants
    rounded once. ``bands_of`` (0-based level indices) limits the levels whose bands are built (the
    others are None): the low-pass chain costs only crops and products, the bands an inverse FFT each.
    Under ``jax.jit``, outputs a caller does not use are not computed either way.
    """
    height, width = x.shape[-2:]
    if levels < 0 or levels > scf_pyramid_max_height(height, width):
        raise InputError(f"scf_pyramid: cannot build {levels} levels on {height} x {width} images (at most "
                         f"{scf_pyramid_max_height(height, width)}; each level needs the image side >= 2^(level + 2))")
    if orientations < 1 or orientations > 16:
        raise InputError(f"scf_pyramid: orientations must be 1..16, got {orientations}")
    lo0mask, hi0mask, plan = _scf_plan(int(height), int(width), int(levels), int(orientations), float(twidth))
    dft = _fft_centred(x.astype(jnp.float32))
    highpass = jnp.real(_ifft_centred(dft * jnp.asarray(hi0mask, jnp.float32)))
    lodft = dft * jnp.asarray(lo0mask, jnp.float32)
    bands = []
    for index, (band_masks, (r0, c0, rows, cols), lomask) in enumerate(plan):
        if bands_of is None or index in bands_of:
            bands.append(_ifft_centred(lodft[..., None, :, :] * jnp.asarray(band_masks, jnp.complex64)))
        else:
            bands.append(None)
        lodft = lodft[..., r0:r0 + rows, c0:c0 + cols] * jnp.asarray(lomask, jnp.float32)
    lowpass = jnp.real(_ifft_centred(lodft))
    return highpass, bands, lowpass


# ----------------------------------------------------------------------------------------------------
# CW-SSIM


def _gaussian_weights(rows: int, cols: int, sigma: float) -> np.ndarray:
    """MATLAB ``fspecial('gaussian', [rows cols], sigma)`` (normalised to sum 1)."""
    y = np.arange(rows, dtype=np.float64) - (rows - 1) / 2
    x = np.arange(cols, dtype=np.float64) - (cols - 1) / 2
    h = np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma ** 2))
    h[h < np.finfo(np.float64).eps * h.max()] = 0.0
    return h / h.sum()


def _box7(a: jax.Array) -> jax.Array:
    taps = (1.0 / 7.0,) * 7
    return correlate1d(correlate1d(a, taps, axis=-2), taps, axis=-1)


def _grey(x: jax.Array, colour: str, quantize: bool) -> jax.Array:
    """The grey image on the 0..255 scale."""
    if colour not in ("gray", "luma", "y"):
        raise InputError(f"cw_ssim: colour must be 'gray', 'luma' or 'y', got {colour!r}")
    if x.shape[-1] == 1:
        grey = quantize_8bit(x) if quantize else x
    elif colour == "gray":
        grey = rgb_to_gray(x, quantize=quantize)
    elif colour == "y":
        grey = rgb_to_y(x, quantize=quantize)
    else:
        grey = rgb_to_luma(x)
        if quantize:  # pyiqa: round(255 Y) of the unrounded input
            grey = jnp.round(255.0 * grey) / 255.0
    return 255.0 * grey[..., 0]


@functools.partial(jax.jit, static_argnames=("level", "orientations", "guardb", "k", "colour", "quantize", "eps"))
def cw_ssim(x: jax.Array, y: jax.Array, *, level: int = 6, orientations: int = 16, guardb: int = 0,
            k: float = 0.0, colour: str = "gray", quantize: bool = False, eps: float = 1e-6) -> jax.Array:
    """CW-SSIM per image (higher is better, 1 for identical images); NHWC RGB or grey in [0, 1].

    ``x`` distorted, ``y`` reference (the index is symmetric). Options as in the module docstring:
    ``level`` (pyramid levels; the coarsest is compared), ``orientations``, ``guardb`` (border
    discarded, in full-resolution pixels; a multiple of ``2^(level - 1)``), ``k`` (the constant K on
    the 0..255 scale), ``colour`` (``"gray"``, ``"luma"``, ``"y"``) for RGB inputs, ``quantize``
    (round the grey image to 8 bits: MATLAB's uint8 conversion for ``"gray"`` and ``"y"``, pyiqa's
    ``round(255 Y)`` for ``"luma"``; its gradient is 0, so leave it off for a loss), ``eps`` (added to
    K; see the module docstring). Images need sides of at least ``2^(level + 2)`` pixels.

    Gradient: ``|sum c1 conj(c2)|`` has a zero gradient where the sum is 0; with ``k + eps == 0``, a
    window with no band energy in either image scores 1 with a zero gradient.
    """
    if level < 1:
        raise InputError(f"cw_ssim: level must be >= 1, got {level}")
    side = 2 ** (level + 2)
    # A reference shared by the batch (batch size 1) is transformed once.
    x, y = check_pair("cw_ssim", x, y, channels=(1, 3), min_size=side, keep_shared=True)
    if guardb < 0 or guardb % (2 ** (level - 1)):
        raise InputError(f"cw_ssim: guardb must be a non-negative multiple of 2^(level - 1) = {2 ** (level - 1)}, "
                         f"got {guardb}")
    gb = guardb // 2 ** (level - 1)
    gx, gy = _grey(x, colour, quantize), _grey(y, colour, quantize)
    # The bands ignore the mean (zero frequency); removing it keeps its round-off out of the transform.
    gx = gx - jnp.mean(gx, axis=(1, 2), keepdims=True)
    gy = gy - jnp.mean(gy, axis=(1, 2), keepdims=True)
    n = gx.shape[0]
    # Both images in one pyramid pass.
    _, bands, _ = scf_pyramid(jnp.concatenate([gx, gy], axis=0), level, orientations, bands_of=(level - 1,))
    band = bands[-1]
    rows, cols = band.shape[-2:]
    if min(rows, cols) - 2 * gb < 7:
        raise InputError(f"cw_ssim: guardb={guardb} leaves fewer than 7 x 7 coefficients in the {rows} x {cols} "
                         "bands of the coarsest level")
    if gb:
        band = band[..., gb:rows - gb, gb:cols - gb]
    b1, b2 = band[:n], band[n:]  # b2 may have batch size 1 (shared reference): broadcast
    corr = b1 * jnp.conj(b2)
    energy = jnp.square(jnp.real(b1)) + jnp.square(jnp.imag(b1)) + jnp.square(jnp.real(b2)) + jnp.square(jnp.imag(b2))
    corr_re, corr_im, energy = _box7(jnp.real(corr)), _box7(jnp.imag(corr)), _box7(energy)
    numerator = 2.0 * safe_sqrt(jnp.square(corr_re) + jnp.square(corr_im)) + (k + eps)
    denominator = energy + (k + eps)
    defined = denominator > 0
    cs_map = jnp.where(defined, numerator / jnp.where(defined, denominator, 1.0), 1.0)
    weights = _gaussian_weights(cs_map.shape[-2], cs_map.shape[-1], rows / 4.0)
    per_band = jnp.sum(cs_map * jnp.asarray(weights, jnp.float32), axis=(-2, -1))
    return jnp.mean(per_band, axis=-1)
