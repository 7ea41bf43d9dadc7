"""GMSD (Xue, Zhang, Mou, Bovik 2014), multi-scale GMSD (Zhang, Sander, Bermak, ICASSP 2017) and MDSI
(Nafchi, Shahkolaei, Hedjam, Cheriet 2016): gradient-similarity deviations.

GMSD (:func:`gmsd`) follows the authors' MATLAB code: luma ``0.299 R + 0.587 G + 0.114 B`` (unrounded), a 2 x 2 average
with zero padding at the bottom/right keeping every second pixel, Prewitt gradients (kernel / 3, zero
'same' padding), similarity ``(2 g_x g_y + T) / (g_x^2 + g_y^2 + T)`` with T = 170 on the 8-bit scale
(170 / 255^2 here), and the standard deviation of the similarity map (``std2``: N - 1 in the
denominator; ``ddof=0`` gives piq's value). Lower is better; 0 for identical images.

MS-GMSD and MS-GMSDc (:func:`ms_gmsd`; "Gradient magnitude similarity deviation on multiple scales for color
image quality assessment"). The authors published no code; the default reproduces piq 0.8's
``multi_scale_gmsd`` (the common implementation, tested to 1e-4), whose constants piq takes from the paper
(piqa's independent ``ms_gmsd`` uses the same weights, alpha and T, the same full-resolution first scale and
the same ``sqrt(sum w GMSD^2)`` combination):

* luma ``Y = 0.299 R + 0.587 G + 0.114 B`` and the chromatic ``I``, ``Q`` of YIQ (rows
  ``0.5959, -0.2746, -0.3213`` and ``0.2115, -0.5227, 0.3112``), unrounded; grey images are used as Y;
* four scales, weights (0.096, 0.596, 0.289, 0.019) (normalised to sum 1), the first at full resolution
  (no initial 2 x 2 average, unlike GMSD), each next one a 2 x 2 average with zero padding at the
  bottom/right of an odd side, keeping every second pixel;
* Prewitt gradients (kernel / 3, zero 'same' padding) and the masked similarity
  ``((2 - alpha) g_x g_y + T) / (g_x^2 + g_y^2 - alpha g_x g_y + T)``, alpha = 0.5, T = 170 on the 8-bit
  scale (170 / 255^2 here), pooled by the population standard deviation (N in the denominator; ``ddof=1``
  gives piqa's ``ms_gmsd``, which otherwise has the same luminance model);
* ``MS = sqrt(sum_s w_s GMSD_s^2)``;
* ``chromatic=True``: ``gamma = 2 / (1 + beta2 exp(-beta3 MS)) - 1`` and
  ``score = gamma MS + (1 - gamma) beta1 RMSE_IQ``, beta1 = 0.01, beta2 = 0.32, beta3 = 15, with
  ``RMSE_IQ = sqrt(mean (I_x - I_y)^2 + mean (Q_x - Q_y)^2)`` on the 0..255 scale, computed (as in piq) on
  the I and Q channels of the coarsest scale (1/8 resolution).

The paper's full text was not available when this was written, so whether piq departs from it (the scale at
which RMSE_IQ is taken, the 0..255 scale of the chromatic term, the population standard deviation) is not
established here; no option offers another form of the chromatic term.

MDSI (:func:`mdsi`): mean deviation similarity index (Nafchi, Shahkolaei, Hedjam and Cheriet, IEEE Access 2016).

The default reproduces the authors' MATLAB code (``MDSI.m``, MATLAB File Exchange 59809); piq 0.8's
``piq.mdsi`` computes the same numbers (it is tested against both). Conventions:

* Scale: the [0, 1] inputs are taken to the 0..255 scale inside (the constants are 8-bit ones); nothing is
  rounded, so the metric stays differentiable.
* Downsampling: ``f = max(1, round(min(H, W) / 256))``; each RGB channel is filtered by an f x f box with
  zero padding, MATLAB ``conv2(I, ones(f) / f^2, 'same')`` (the box covers ``(f - 1) // 2`` pixels before and
  ``f // 2`` after each pixel), then every f-th pixel from the first is kept (``I(1:f:end, 1:f:end)``;
  ``ceil(side / f)`` pixels). piq's zero padding ``((f - 1) // 2, f // 2)`` followed by ``avg_pool2d(f)``
  is the same operation, so there is no separate piq option.
* Colour: luminance ``L = 0.2989 R + 0.5870 G + 0.1140 B`` (the constants of ``MDSI.m``, not MATLAB's
  ``rgb2gray``) and the chromaticity channels ``H = 0.30 R + 0.04 G - 0.35 B`` and
  ``M = 0.34 R - 0.60 G + 0.17 B``. Grey inputs (one channel) are repeated to RGB, as piq does (MDSI.m
  accepts colour images only).
* Gradients: Prewitt kernels ``[1 0 -1; 1 0 -1; 1 0 -1] / 3`` and their transpose with zero 'same' padding,
  on the luminance of the reference, of the distorted image and of their average ``F``.
* Gradient similarity ``GS = GS(x, y) + GS(x, F) - GS(y, F)`` with ``GS(a, b) = (2 g_a g_b + C) /
  (g_a^2 + g_b^2 + C)``, C1 = 140 for ``(x, y)`` and C2 = 55 for the pairs with ``F`` (``x`` distorted,
  ``y`` reference: ``GS12 + GS23 - GS13`` of MDSI.m); chromaticity similarity
  ``CS = (2 (H_x H_y + M_x M_y) + C3) / (H_x^2 + H_y^2 + M_x^2 + M_y^2 + C3)``, C3 = 550.
* Combination: ``"sum"`` (default) ``GCS = alpha GS + (1 - alpha) CS`` with alpha = 0.6; ``"mult"``
  ``GCS = GS^gamma CS^beta`` with gamma = 0.2, beta = 0.1, taken as principal complex powers as MATLAB
  does for negative bases.
* Deviation pooling: ``Z = GCS^q`` (principal complex power; q = 0.25, MDSI.m's ``(GCS .^ 0.5) .^ 0.5``),
  the mean absolute deviation ``mean |Z - mean(Z)|`` (MATLAB ``mad``, the modulus of a complex difference),
  raised to o = 0.25. ``rho`` is piq's Minkowski order (``mean(|Z - mean Z|^rho)^(o / rho)``; 1 in MDSI.m).

Where piq 0.8 departs: with ``combination="mult"`` piq multiplies ``GS^gamma`` and ``CS^beta`` as pairs of
(real part, imaginary part) component-wise and adds the imaginary parts, which is the complex product only
where both are real, i.e. where GS and CS are non-negative. GS (a sum and difference of similarities) is
negative at some pixels of most distorted photographs, and the two forms then differ by up to ~3e-4
(relative) on the test photographs. The default is the complex product of MDSI.m; ``mult_form="piq"``
gives piq's form. With ``combination="sum"`` piq and MDSI.m agree.

Lower is better; 0 for identical images.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.metrics.common import (
    YIQ_NTSC, check_pair, conv2_box_downsample, downsample_factor, rgb_to_luma, safe_power,
)
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = ["MDSI_LHM", "MS_GMSD_WEIGHTS", "gmsd", "mdsi", "ms_gmsd"]

# Scale weights of MS-GMSD (finest first).
MS_GMSD_WEIGHTS = (0.096, 0.596, 0.289, 0.019)


def _gradient_magnitude(x: jax.Array) -> jax.Array:
    # Prewitt kernels ([1, 0, -1] across, [1, 1, 1] / 3 along; the sign does not matter), zero 'same' padding.
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    along_w = correlate1d(correlate1d(padded, (1 / 3, 1 / 3, 1 / 3), axis=1), (1.0, 0.0, -1.0), axis=2)
    along_h = correlate1d(correlate1d(padded, (1.0, 0.0, -1.0), axis=1), (1 / 3, 1 / 3, 1 / 3), axis=2)
    return safe_sqrt(jnp.sum(jnp.square(along_w) + jnp.square(along_h), axis=-1))


@functools.partial(jax.jit, static_argnames=("t", "ddof"))
def gmsd(x: jax.Array, y: jax.Array, *, t: float = 170.0 / 255.0 ** 2, ddof: int = 1) -> jax.Array:
    """GMSD per image; NHWC RGB or grey images in [0, 1]."""
    x, y = check_pair("gmsd", x, y, channels=(1, 3), min_size=2)
    if x.shape[-1] == 3:
        x, y = rgb_to_luma(x), rgb_to_luma(y)
    gx, gy = _gradient_magnitude(conv2_box_downsample(x, 2)), _gradient_magnitude(conv2_box_downsample(y, 2))
    similarity = (2.0 * gx * gy + t) / (jnp.square(gx) + jnp.square(gy) + t)
    count = similarity.shape[1] * similarity.shape[2]
    centred = similarity - jnp.mean(similarity, axis=(1, 2), keepdims=True)
    variance = jnp.sum(jnp.square(centred), axis=(1, 2)) / (count - ddof)
    return safe_sqrt(variance)


@functools.partial(jax.jit, static_argnames=("chromatic", "scale_weights", "t", "alpha", "beta1", "beta2", "beta3",
                                             "ddof"))
def ms_gmsd(x: jax.Array, y: jax.Array, *, chromatic: bool = False,
            scale_weights: tuple[float, ...] = MS_GMSD_WEIGHTS, t: float = 170.0 / 255.0 ** 2, alpha: float = 0.5,
            beta1: float = 0.01, beta2: float = 0.32, beta3: float = 15.0, ddof: int = 0) -> jax.Array:
    """MS-GMSD (``chromatic=False``) or MS-GMSDc per image; NHWC RGB (or grey, without ``chromatic``) in
    [0, 1], at least ``2 ** len(scale_weights) + 1`` (17) pixels a side. Lower is better; 0 for identical
    images.

    Gradient at the non-differentiable points: the gradient magnitudes, ``MS = sqrt(...)`` and ``RMSE_IQ``
    take gradient 0 where their argument is 0 (so the gradient is exactly 0 at ``x == y``).
    """
    num_scales = len(scale_weights)
    x, y = check_pair("ms_gmsd", x, y, channels=(1, 3), min_size=2 ** num_scales + 1)
    if chromatic and x.shape[-1] != 3:
        raise InputError(f"ms_gmsd: chromatic=True needs RGB images, got shape {x.shape}")
    if x.shape[-1] == 3:
        rows = YIQ_NTSC if chromatic else YIQ_NTSC[:1]
        weights = jnp.asarray(rows, jnp.float32).T
        x, y = (jnp.einsum("nhwc,ck->nhwk", v, weights, precision=jax.lax.Precision.HIGHEST) for v in (x, y))
    total = sum(scale_weights)
    pooled = 0.0
    for scale, weight in enumerate(scale_weights):
        if scale:
            x, y = conv2_box_downsample(x, 2), conv2_box_downsample(y, 2)
        gx, gy = _gradient_magnitude(x[..., :1]), _gradient_magnitude(y[..., :1])
        # similarity - 1 = -(g_x - g_y)^2 / denominator: the same map shifted by 1 (the deviation does not
        # change), without float32 cancellation when the similarity is close to 1.
        denominator = jnp.square(gx) + jnp.square(gy) - alpha * gx * gy + t
        shifted = -jnp.square(gx - gy) / denominator
        centred = shifted - jnp.mean(shifted, axis=(1, 2), keepdims=True)
        count = centred.shape[1] * centred.shape[2]
        variance = jnp.sum(jnp.square(centred), axis=(1, 2)) / max(count - ddof, 1)
        pooled = pooled + (weight / total) * variance
    score = safe_sqrt(pooled)
    if chromatic:
        rmse_iq = safe_sqrt(jnp.sum(jnp.mean(jnp.square((x[..., 1:] - y[..., 1:]) * 255.0), axis=(1, 2)), axis=-1))
        gamma = 2.0 / (1.0 + beta2 * jnp.exp(-beta3 * score)) - 1.0
        score = gamma * score + (1.0 - gamma) * beta1 * rmse_iq
    return score

# Rows: the L, H and M channels of MDSI.m as weights of R, G and B.
MDSI_LHM = ((0.2989, 0.5870, 0.1140), (0.30, 0.04, -0.35), (0.34, -0.60, 0.17))


def _similarity_minus_one(a: jax.Array, b: jax.Array, c: float) -> jax.Array:
    """``(2 a b + c) / (a^2 + b^2 + c) - 1``."""
    return -jnp.square(a - b) / (jnp.square(a) + jnp.square(b) + c)


def _polar(v: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Modulus and principal argument (0 or pi) of a real array. The argument is piecewise constant: its
    gradient is 0 (at v == 0 too); the modulus' gradient at 0 is 0."""
    return jnp.abs(v), jnp.where(v < 0, math.pi, 0.0)


@functools.partial(jax.jit, static_argnames=("c1", "c2", "c3", "combination", "alpha", "beta", "gamma", "rho",
                                             "q", "o", "mult_form"))
def mdsi(x: jax.Array, y: jax.Array, *, c1: float = 140.0, c2: float = 55.0, c3: float = 550.0,
         combination: str = "sum", alpha: float = 0.6, beta: float = 0.1, gamma: float = 0.2, rho: float = 1.0,
         q: float = 0.25, o: float = 0.25, mult_form: str = "matlab") -> jax.Array:
    """MDSI per image (lower is better, 0 for identical images); ``x`` distorted, ``y`` reference, NHWC RGB
    (or grey, repeated to RGB) in [0, 1], at least 3 x 3 pixels. Constants are on the 0..255 scale.

    Gradient at the non-differentiable points: the gradient magnitudes ``sqrt(Ix^2 + Iy^2)``, the pooled
    deviation ``|Z - mean Z|``, the powers ``|GCS|^q`` (and ``|GS|^gamma``, ``|CS|^beta``) and the final
    ``mean(...)^o`` all take gradient 0 where their argument is 0 (so the gradient is exactly 0 at
    ``x == y``, where every deviation is 0); the argument of a negative GCS (pi) is constant, with gradient
    0, including where GCS crosses 0. With ``mult_form="piq"`` the argument ``atan2(im, re)`` of piq's
    product takes gradient 0 where both parts are 0.
    """
    if combination not in ("sum", "mult"):
        raise InputError(f"mdsi: combination must be 'sum' or 'mult', got {combination!r}")
    if mult_form not in ("matlab", "piq"):
        raise InputError(f"mdsi: mult_form must be 'matlab' or 'piq', got {mult_form!r}")
    x, y = check_pair("mdsi", x, y, channels=(1, 3), min_size=3)
    if x.shape[-1] == 1:
        x, y = jnp.repeat(x, 3, axis=-1), jnp.repeat(y, 3, axis=-1)
    factor = downsample_factor(*x.shape[1:3])
    weights = jnp.asarray(MDSI_LHM, jnp.float32).T * 255.0
    lhm_x, lhm_y = (jnp.einsum("nhwc,ck->nhwk", conv2_box_downsample(v, factor), weights,
                               precision=jax.lax.Precision.HIGHEST) for v in (x, y))
    lum_x, lum_y = lhm_x[..., :1], lhm_y[..., :1]
    # One call for the three gradient maps: identical operations, so g_f == g_x bit for bit when x == y.
    g_x, g_y, g_f = jnp.split(_gradient_magnitude(jnp.concatenate([lum_x, lum_y, 0.5 * (lum_x + lum_y)])), 3)
    # Similarities minus 1, free of cancellation (exactly 0 where the compared values are equal):
    # GS(a, b) - 1 = -(a - b)^2 / (a^2 + b^2 + C), CS - 1 = -((H_x - H_y)^2 + (M_x - M_y)^2) / (...).
    gs = 1.0 + (_similarity_minus_one(g_x, g_y, c1) + _similarity_minus_one(g_x, g_f, c2)
                - _similarity_minus_one(g_y, g_f, c2))
    hx, mx, hy, my = lhm_x[..., 1], lhm_x[..., 2], lhm_y[..., 1], lhm_y[..., 2]
    cs_denominator = jnp.square(hx) + jnp.square(hy) + jnp.square(mx) + jnp.square(my) + c3
    cs_shift = -(jnp.square(hx - hy) + jnp.square(mx - my)) / cs_denominator

    if combination == "sum":
        modulus, phase = _polar(alpha * gs + (1.0 - alpha) * (1.0 + cs_shift))
    else:
        (gs_mod, gs_arg), (cs_mod, cs_arg) = _polar(gs), _polar(1.0 + cs_shift)
        gs_mod, gs_arg = safe_power(gs_mod, gamma), gamma * gs_arg
        cs_mod, cs_arg = safe_power(cs_mod, beta), beta * cs_arg
        if mult_form == "matlab":
            modulus, phase = gs_mod * cs_mod, gs_arg + cs_arg  # within [0, pi): a principal argument
        else:  # piq 0.8: (re1 * re2, im1 + im2)
            re = gs_mod * jnp.cos(gs_arg) * cs_mod * jnp.cos(cs_arg)
            im = gs_mod * jnp.sin(gs_arg) + cs_mod * jnp.sin(cs_arg)
            modulus = safe_sqrt(jnp.square(re) + jnp.square(im))
            nonzero = (re != 0) | (im != 0)
            phase = jnp.where(nonzero, jnp.arctan2(jnp.where(nonzero, im, 0.0), jnp.where(nonzero, re, 1.0)), 0.0)
    radius = safe_power(modulus, q)
    z_re, z_im = radius * jnp.cos(q * phase), radius * jnp.sin(q * phase)
    d_re = z_re - jnp.mean(z_re, axis=(1, 2), keepdims=True)
    d_im = z_im - jnp.mean(z_im, axis=(1, 2), keepdims=True)
    deviation = safe_sqrt(jnp.square(d_re) + jnp.square(d_im))
    if rho != 1.0:
        deviation = safe_power(deviation, rho)
    return safe_power(jnp.mean(deviation, axis=(1, 2)), o / rho)
