"""VSI: visual saliency-induced index (Zhang, Shen and Li, IEEE TIP 2014).

The default follows the authors' MATLAB code (``VSI.m`` with its SDSP saliency model, Lin Zhang, Tongji
University) on RGB images, with the 0..255 scale of an 8-bit image (inputs are [0, 1] and scaled by 255
inside; nothing is rounded, so the metric stays differentiable):

* Saliency (SDSP, Zhang, Gu and Li, ICIP 2013) of each image: every channel resized to 256 x 256 with
  MATLAB ``imresize(..., [256 256], 'bilinear')`` (triangle kernel, widened by ``1 / scale`` and
  renormalised when shrinking, i.e. MATLAB's default antialiasing; mirrored borders), then the authors'
  own sRGB -> CIELab conversion (sRGB gamma, the sRGB/D65 XYZ matrix, reference white
  ``Xr = 0.9642, Yr = 1, Zr = 0.8251``, CIE epsilon 0.008856 and kappa 903.3). Frequency prior: each
  Lab channel filtered in the Fourier domain by a log-Gabor ``exp(-log(r / omega0)^2 / (2 sigmaF^2))``,
  omega0 = 0.021, sigmaF = 1.34, zero at DC and for r > 0.5; the magnitude of the three real parts.
  Location prior ``exp(-((i - 128)^2 + (j - 128)^2) / sigmaD^2)``, sigmaD = 145 (1-based i, j). Colour
  prior ``1 - exp(-(a'^2 + b'^2) / sigmaC^2)``, sigmaC = 0.001, a' and b' the a and b channels scaled to
  [0, 1] by their min and max. The product is resized back with ``imresize(..., [H W], 'bilinear')``
  (antialiased again when H or W < 256) and scaled to [0, 1] by its min and max (``mat2gray``).
* LMN opponent colours on the 0..255 scale: L = 0.06 R + 0.63 G + 0.27 B, M = 0.30 R + 0.04 G - 0.35 B,
  N = 0.34 R - 0.60 G + 0.17 B.
* Downsampling ``F = max(1, round(min(H, W) / 256))`` (MATLAB ``round``, half away from zero) of L, M, N
  and both saliency maps: ``conv2(I, ones(F) / F^2, 'same')`` (zero padding; the box starts
  ``ceil(F / 2) - 1`` pixels before each kept pixel) then ``I(1:F:end, 1:F:end)``.
* Gradient magnitude of L with the Scharr kernels ``[3 0 -3; 10 0 -10; 3 0 -3] / 16`` and its transpose,
  ``conv2(..., 'same')`` (zero padding).
* ``S = S_VS * S_GM^alpha * real((S_M S_N)^beta)`` with the similarities ``(2 a b + C) / (a^2 + b^2 + C)``,
  C1 = 1.27 (saliency), C2 = 386 (gradient), C3 = 130 (M and N), alpha = 0.40, beta = 0.02; a negative
  ``S_M S_N`` gives ``|S_M S_N|^beta cos(beta pi)`` (MATLAB's real part of the complex power). Pooled as
  ``sum(S VS_m) / sum(VS_m)`` with ``VS_m = max(VS_x, VS_y)``. Higher is better; 1 for identical images.

piq 0.8 (``piq.vsi``) differs in three places, each an option here; with all three set
(``resize="piq", downsample="piq", white_point="piq"``) the piq numbers are reproduced:

* ``resize="piq"``: torch ``interpolate(..., 'bilinear', align_corners=False)`` to 256 x 256 without
  antialiasing, and ``align_corners=True`` on the way back.
* ``downsample="piq"``: F from Python's ``round`` (half to even: 640 px gives F = 2, not 3), replicate
  padding of ``F // 2`` pixels before and ``(F - 1) // 2`` after, and an F x F average pool with stride F
  (``ceil(side / F)`` outputs, as MATLAB), so each box starts ``F // 2`` pixels before its kept pixel
  (MATLAB: ``ceil(F / 2) - 1``, one pixel later for even F) and reads replicated, not zero, borders.
* ``white_point="piq"``: the D50 white ``(0.9642119944211994, 1, 0.8251882845188288)`` instead of the
  authors' rounded ``(0.9642, 1, 0.8251)``.
  (piq also adds float eps to the min-max normalisations and to both pooled sums: negligible.)

Grey inputs (N x H x W x 1) are taken as RGB with three equal channels, as piq does (the authors' code
needs RGB).

Degenerate cases (where MATLAB divides 0 by 0, or ``mat2gray`` keeps a constant map): an a or b channel whose range over the 256 x 256 image is at
most ``FLAT_LAB_RANGE`` (1e-2 Lab units; float32 rounding puts about 1e-5 of noise on a flat image) is
taken as flat, its normalised values 0, so the colour prior is 0; a saliency map whose range is 0 is
taken as 0; where both saliency maps are 0 everywhere (flat images) the score is the plain mean of ``S``.

Resizing is done with small dense ``(out, in)`` matrices built in float64 numpy (this module does not
import ``asym_jax.data``, whose ``imresize`` covers MATLAB's bicubic by a scale factor) and applied in
float32 at ``Precision.HIGHEST``; the Fourier filtering uses ``jnp.fft`` in complex64.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import (
    check_pair, conv2_box_downsample, downsample_factor, safe_power, scharr_magnitude, similarity,
)
from asym_jax.ops import safe_sqrt
from asym_jax.resize_weights import matlab_resize_matrix

__all__ = ["FLAT_LAB_RANGE", "sdsp", "vsi"]

SDSP_SIZE = 256
FLAT_LAB_RANGE = 1e-2
_WHITE_POINTS = {"matlab": (0.9642, 1.0, 0.8251), "piq": (0.9642119944211994, 1.0, 0.8251882845188288)}
_RGB_TO_XYZ = ((0.4124564, 0.3575761, 0.1804375),
               (0.2126729, 0.7151522, 0.0721750),
               (0.0193339, 0.1191920, 0.9503041))
_RGB_TO_LMN = ((0.06, 0.63, 0.27), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))
_HIGHEST = jax.lax.Precision.HIGHEST


# ----------------------------------------------------------------------------------------- resizing
def matlab_bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The float64 ``(out_size, in_size)`` matrix of MATLAB ``imresize(v, [out_size 1], 'bilinear')`` on a
    column (scale ``out / in``, antialiased when shrinking, mirrored edges; cached, read-only)."""
    return matlab_resize_matrix(in_size, out_size, out_size / in_size, "bilinear", True)


@functools.lru_cache(maxsize=32)
def torch_bilinear_matrix(in_size: int, out_size: int, align_corners: bool) -> np.ndarray:
    """The float64 matrix of torch ``interpolate(..., mode='bilinear', align_corners=...)`` along one axis
    (no antialiasing): source ``(i + 0.5) * in / out - 0.5`` clamped at 0, or ``i * (in - 1) / (out - 1)``."""
    i = np.arange(out_size, dtype=np.float64)
    if align_corners:
        source = i * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros_like(i)
    else:
        source = np.maximum((i + 0.5) * (in_size / out_size) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), in_size - 1)
    high = np.minimum(low + 1, in_size - 1)
    frac = source - low
    matrix = np.zeros((out_size, in_size), np.float64)
    np.add.at(matrix, (np.arange(out_size), low), 1.0 - frac)
    np.add.at(matrix, (np.arange(out_size), high), frac)
    matrix.flags.writeable = False  # cached
    return matrix


def _resize(x: jax.Array, height: int, width: int, kind: str) -> jax.Array:
    """Resizes NHWC ``x`` to ``height x width``; ``kind`` is "matlab", "torch" or "torch_corners"."""
    def matrix(n_in, n_out):
        if kind == "matlab":
            return matlab_bilinear_matrix(n_in, n_out)
        return torch_bilinear_matrix(n_in, n_out, kind == "torch_corners")
    # An axis that keeps its size is left as it is: every kind's matrix is then the identity (exactly).
    if x.shape[1] != height:
        x = jnp.einsum("oh,nhwc->nowc", jnp.asarray(matrix(x.shape[1], height), jnp.float32), x, precision=_HIGHEST)
    if x.shape[2] != width:
        x = jnp.einsum("pw,nowc->nopc", jnp.asarray(matrix(x.shape[2], width), jnp.float32), x, precision=_HIGHEST)
    return x


# ------------------------------------------------------------------------------------------- SDSP
def _rgb_to_lab(rgb: jax.Array, white: tuple[float, float, float]) -> jax.Array:
    """The authors' sRGB -> CIELab (``RGB2Lab`` in SDSP) of [0, 1] RGB; returns L, a, b."""
    above = rgb > 0.04045
    linear = jnp.where(above, jnp.power(jnp.where(above, (rgb + 0.055) / 1.055, 1.0), 2.4), rgb / 12.92)
    matrix = np.asarray(_RGB_TO_XYZ, np.float64) / np.asarray(white, np.float64)[:, None]
    xyz = jnp.einsum("nhwc,kc->nhwk", linear, jnp.asarray(matrix, jnp.float32), precision=_HIGHEST)
    cube = xyz > 0.008856
    f = jnp.where(cube, jnp.cbrt(jnp.where(cube, xyz, 1.0)), (903.3 * xyz + 16.0) / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    return jnp.stack([116.0 * fy - 16.0, 500.0 * (fx - fy), 200.0 * (fy - fz)], axis=-1)


@functools.lru_cache(maxsize=8)
def _log_gabor(size: int, omega0: float, sigma_f: float) -> np.ndarray:
    """SDSP's log-Gabor transfer function on the unshifted FFT grid (DC at [0, 0]), float64."""
    u = (np.arange(1, size + 1) - (size // 2 + 1)) / (size - size % 2)
    u1, u2 = np.meshgrid(u, u)
    inside = u1 ** 2 + u2 ** 2 <= 0.25
    radius = np.fft.ifftshift(np.sqrt(u1 ** 2 + u2 ** 2) * inside)
    with np.errstate(divide="ignore"):
        lg = np.exp(-np.log(np.where(radius > 0, radius, 1.0) / omega0) ** 2 / (2.0 * sigma_f ** 2))
    lg = np.where(radius > 0, lg, 0.0)  # DC and everything outside the disc
    lg.flags.writeable = False  # cached
    return lg


@functools.lru_cache(maxsize=8)
def _location_prior(size: int, sigma_d: float) -> np.ndarray:
    i = np.arange(1, size + 1, dtype=np.float64) - size / 2.0
    prior = np.exp(-(i[:, None] ** 2 + i[None, :] ** 2) / sigma_d ** 2)
    prior.flags.writeable = False  # cached
    return prior


def _min_max_normalise(v: jax.Array, threshold: float) -> jax.Array:
    """``(v - min) / (max - min)`` over H and W per image and channel; 0 where the range is <= threshold."""
    low = jnp.min(v, axis=(1, 2), keepdims=True)
    spread = jnp.max(v, axis=(1, 2), keepdims=True) - low
    varied = spread > threshold
    return jnp.where(varied, (v - low) / jnp.where(varied, spread, 1.0), 0.0)


def sdsp(x: jax.Array, *, resize: str = "matlab", white_point: str = "matlab", omega0: float = 0.021,
         sigma_f: float = 1.34, sigma_d: float = 145.0, sigma_c: float = 0.001) -> jax.Array:
    """SDSP saliency of [0, 1] RGB NHWC images as VSI.m computes it: N x H x W x 1 in [0, 1].

    Gradients: the min-max normalisations (of a, b and of the map) pass gradient to the extreme pixels
    (JAX shares it between ties); a flat channel (see the module docstring) gets none.
    """
    for name, value in (("resize", resize), ("white_point", white_point)):
        if value not in ("matlab", "piq"):
            raise InputError(f"sdsp: {name} must be 'matlab' or 'piq', got {value!r}")
    height, width = x.shape[1], x.shape[2]
    small = _resize(x, SDSP_SIZE, SDSP_SIZE, "matlab" if resize == "matlab" else "torch")
    lab = _rgb_to_lab(small, _WHITE_POINTS[white_point])
    spectrum = jnp.fft.fft2(lab.astype(jnp.complex64), axes=(1, 2))
    gabor = jnp.asarray(_log_gabor(SDSP_SIZE, omega0, sigma_f), jnp.float32)[None, :, :, None]
    filtered = jnp.real(jnp.fft.ifft2(spectrum * gabor, axes=(1, 2)))
    frequency = safe_sqrt(jnp.sum(jnp.square(filtered), axis=-1, keepdims=True))
    location = jnp.asarray(_location_prior(SDSP_SIZE, sigma_d), jnp.float32)[None, :, :, None]
    chroma = _min_max_normalise(lab[..., 1:], FLAT_LAB_RANGE)
    colour = 1.0 - jnp.exp(-jnp.sum(jnp.square(chroma), axis=-1, keepdims=True) / sigma_c ** 2)
    saliency = frequency * location * colour
    saliency = _resize(saliency, height, width, "matlab" if resize == "matlab" else "torch_corners")
    return _min_max_normalise(saliency, 0.0)


# ------------------------------------------------------------------------------------ VSI proper
def _box_downsample(x: jax.Array, factor: int, downsample: str) -> jax.Array:
    if downsample == "matlab" or factor == 1:  # conv2(I, ones(F)/F^2, 'same'), zero padding, I(1:F:end, 1:F:end)
        return conv2_box_downsample(x, factor)
    # piq: replicate padding F // 2 before, (F - 1) // 2 after, avg_pool2d(F) (floor)
    before, after = factor // 2, (factor - 1) // 2
    x = jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)), mode="edge")
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, factor, factor, 1), (1, factor, factor, 1), "VALID")
    return summed / float(factor * factor)


def _factor(height: int, width: int, downsample: str) -> int:
    return downsample_factor(height, width) if downsample == "matlab" else max(1, round(min(height, width) / 256.0))


_OPTIONS = ("resize", "downsample", "white_point", "c1", "c2", "c3", "alpha", "beta", "omega0", "sigma_f",
            "sigma_d", "sigma_c")


@functools.partial(jax.jit, static_argnames=_OPTIONS)
def vsi(x: jax.Array, y: jax.Array, *, resize: str = "matlab", downsample: str = "matlab",
        white_point: str = "matlab", c1: float = 1.27, c2: float = 386.0, c3: float = 130.0, alpha: float = 0.40,
        beta: float = 0.02, omega0: float = 0.021, sigma_f: float = 1.34, sigma_d: float = 145.0,
        sigma_c: float = 0.001) -> jax.Array:
    """VSI per image of distorted ``x`` against reference ``y``: NHWC RGB (or grey) in [0, 1]; (N,).

    ``y`` may be one reference shared by the batch. Options (see the module docstring): ``resize``,
    ``downsample``, ``white_point`` each "matlab" (the authors' VSI.m, default) or "piq" (piq 0.8); the
    model constants ``c1, c2, c3, alpha, beta`` and SDSP's ``omega0, sigma_f, sigma_d, sigma_c``.

    Gradients where the model is not differentiable: ``max(VS_x, VS_y)`` sends half the gradient to each
    map where they tie; the min-max normalisations in SDSP send it to the extreme pixels (shared among
    ties) and a flat a/b channel or saliency map gets none; the square roots (gradient magnitude, SDSP's
    frequency magnitude) and ``|S_M S_N|^beta`` have gradient 0 where their argument is 0 (the true
    one-sided derivative is infinite); the sign switch of ``S_M S_N`` (factor ``cos(beta pi)``) and the
    sRGB/Lab branch points use the derivative of the branch taken.
    """
    for name, value in (("resize", resize), ("downsample", downsample), ("white_point", white_point)):
        if value not in ("matlab", "piq"):
            raise InputError(f"vsi: {name} must be 'matlab' or 'piq', got {value!r}")
    x, y = check_pair("vsi", x, y, channels=(1, 3), min_size=3, keep_shared=True)
    if x.shape[-1] == 1:
        x, y = (jnp.repeat(a, 3, axis=-1) for a in (x, y))
    options = dict(resize=resize, white_point=white_point, omega0=omega0, sigma_f=sigma_f, sigma_d=sigma_d,
                   sigma_c=sigma_c)
    factor = _factor(x.shape[1], x.shape[2], downsample)
    lmn = jnp.asarray(np.asarray(_RGB_TO_LMN) * 255.0, jnp.float32)

    def features(image):
        saliency = sdsp(image, **options)
        opponent = jnp.einsum("nhwc,kc->nhwk", image, lmn, precision=_HIGHEST)
        both = _box_downsample(jnp.concatenate([opponent, saliency], axis=-1), factor, downsample)
        return both[..., 3], scharr_magnitude(both[..., :1])[..., 0], both[..., 1], both[..., 2]

    # One pass over x and y together (y may be a single shared reference).
    count = x.shape[0]
    vs, gm, m, n = features(jnp.concatenate([x, y], axis=0))
    (vs_x, vs_y), (gm_x, gm_y), (m_x, m_y), (n_x, n_y) = ((a[:count], a[count:]) for a in (vs, gm, m, n))
    chroma = similarity(m_x, m_y, c3) * similarity(n_x, n_y, c3)
    chroma_power = safe_power(jnp.abs(chroma), beta) * jnp.where(chroma < 0, math.cos(beta * math.pi), 1.0)
    similarity_map = similarity(vs_x, vs_y, c1) * jnp.power(similarity(gm_x, gm_y, c2), alpha) * chroma_power
    weight = jnp.maximum(vs_x, vs_y)
    total = jnp.sum(weight, axis=(1, 2))
    weighted = jnp.sum(similarity_map * weight, axis=(1, 2))
    has_weight = total > 0
    return jnp.where(has_weight, weighted / jnp.where(has_weight, total, 1.0), jnp.mean(similarity_map, axis=(1, 2)))
