"""VIF: visual information fidelity in the pixel domain (Sheikh and Bovik 2006), ``vifp``.

The default reproduces the authors' pixel-domain MATLAB code, ``vifp_mscale.m`` (LIVE):

* grey images on the 0..255 scale. The authors' code takes a grey image and names no colour conversion,
  so RGB input is converted with MATLAB ``rgb2gray`` unrounded (``colour="gray"``); ``colour="luma"``
  uses BT.601 luma ``0.299 R + 0.587 G + 0.114 B`` as piq does. N x H x W x 1 input is used as it is.
* four scales s = 1..4 with Gaussian windows of size ``N = 2^(5 - s) + 1`` (17, 9, 5, 3) and sigma
  ``N / 5`` (``fspecial('gaussian', N, N / 5)``); every filtering is 'valid'. Before scales 2..4 both
  images are filtered with that scale's window and every second pixel is kept (``(1:2:end, 1:2:end)``).
  The smallest image with four scales is 41 x 41.
* local statistics ``mu``, ``sigma^2``, ``sigma_12`` from the window; negative variances set to 0; gain
  ``g = sigma_12 / (sigma_ref^2 + eps)`` and distortion variance ``sv^2 = sigma_dist^2 - g sigma_12``;
  then, in this order, the reference's thresholds (``sigma_ref^2 < eps``: g = 0, sv^2 = sigma_dist^2,
  sigma_ref^2 = 0), the distorted image's (``sigma_dist^2 < eps``: g = 0, sv^2 = 0), negative gains
  (g = 0, sv^2 = sigma_dist^2) and ``sv^2 <= eps`` -> eps, with ``eps = 1e-10``.
* visual noise variance ``sigma_nsq = 2``; the score is the ratio of the information summed over all
  positions and scales, ``sum log10(1 + g^2 sigma_ref^2 / (sv^2 + sigma_nsq)) /
  sum log10(1 + sigma_ref^2 / sigma_nsq)``.

``vifp_mscale.m`` has no automatic downsampling (``F = max(1, round(min(H, W) / 256))`` of ``ssim.m``);
none is applied here either, by either convention.

Differences of piq 0.8 (``piq.vif_p``) and the options that reproduce it: BT.601 luma on RGB input
(``colour="luma"``), thresholds at 1e-8 instead of 1e-10 (``eps=1e-8``) and ``(num + 1e-8) / (den +
1e-8)`` instead of ``num / den`` (``ratio_eps=1e-8``); ``vif(x, y, colour="luma", eps=1e-8,
ratio_eps=1e-8)`` equals ``piq.vif_p(x, y)``. Everything else is the same.

One convention of ours, where the reference is undefined: a reference without any local variance above
``eps`` at every scale (a flat image) gives ``den = 0`` and ``num = 0``, and ``vifp_mscale.m`` returns
NaN (0 / 0); here the score is 1 then (no information in the reference, none lost), which is also
piq's value. With ``ratio_eps > 0`` the ratio is always defined and this rule never applies.

Numerics (float32, same values as the formulas above up to rounding): the images are centred on their
own mean, and the statistics are taken of the reference and of the residual ``dist - ref`` (see
``_scale_information``); the ratio is evaluated as ``1 + (num - den) / den`` from per-position
differences. Identical images then give exactly 1 and flat images zero variances, and the result does
not suffer the cancellation of ``sigma2_sq - g sigma12`` near ``x == y``. The 1e-10 thresholds act on
float32 local variances, whose rounding noise in a saturated region of a textured image is about 1e-3 on
the 0..255^2 scale, so there they decide differently from double precision: on a half-saturated
photograph the score moves by about 1.5e-5 relative (3e-7 on a low-contrast one).

Not provided: the wavelet-domain VIF (``vifvec.m``, a steerable-pyramid model with a Gaussian scale
mixture) is a different model, not implemented here.

The score is higher for better images, 1 for identical images, and can exceed 1 where ``x`` has more
contrast than ``y``. As a loss: :func:`one_minus_clipped`, ``1 - min(vif, 1)`` as piq's ``VIFLoss``
(``1 - clamp(vif, 0, 1)``): the unclamped ``1 - vif`` has no minimum at ``x == y``, since raising the
contrast of ``x`` raises VIF above 1 (``1 - vif`` has a gradient of about 7e-3 at ``x == y`` on a 128 x 128
photograph); identical images score 1 (exactly in float32, except that the ``eps`` in ``g`` leaves
``1 - O(eps / sigma_ref^2)`` for local variances near eps, as in ``vifp_mscale.m``), so the clamped loss
is 0 there with gradient 0.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair, gaussian_kernel_1d, rgb_to_gray, rgb_to_luma
from asym_jax.ops import correlate1d

__all__ = ["VIF_MIN_SIZE", "one_minus_clipped", "vif"]

# Four scales of 'valid' filtering (17, 9, 5, 3 taps, halving in between) need 41 pixels a side.
VIF_MIN_SIZE = 41
_NUM_SCALES = 4


def _filter(x: jax.Array, taps, stride: int = 1) -> jax.Array:
    """'valid' separable correlation of every channel; with ``stride`` 2 it keeps every second output
    pixel on both axes (``filter2(win, x, 'valid')`` then ``(1:2:end, 1:2:end)``)."""
    return correlate1d(correlate1d(x, taps, axis=1, stride=stride), taps, axis=2, stride=stride)


def _scale_information(ref: jax.Array, res: jax.Array, taps, eps: float,
                       sigma_nsq: float) -> tuple[jax.Array, jax.Array]:
    """``(num - den, den)`` of one scale, summed per image, from the reference ``ref`` and the residual
    ``res = dist - ref``.

    ``vifp_mscale.m``'s quantities, rewritten exactly in terms of the residual's statistics
    (``s11 = var(ref)``, ``s1r = cov(ref, res)``, ``srr = var(res)``):
    ``sigma2_sq = s11 + 2 s1r + srr``, ``sigma12 = s11 + s1r``,
    ``g - 1 = (s1r - eps) / (s11 + eps)``,
    ``sv_sq = srr - s1r^2 / (s11 + eps) + eps (s11 + 2 s1r) / (s11 + eps)``.
    Near ``dist == ref`` (where a loss works) these do not suffer the float32 cancellation of
    ``sigma2_sq - g sigma12``, and at ``dist == ref`` the residual terms are exact zeros.
    """
    stats = _filter(jnp.concatenate([ref, res, ref * ref, ref * res, res * res], axis=-1), taps)
    mu1, mur, e11, e1r, err = jnp.split(stats, 5, axis=-1)
    # Negative variances (rounding) -> 0, gradient 0 there.
    sigma1_sq = jnp.maximum(e11 - mu1 * mu1, 0.0)
    s1r = e1r - mu1 * mur
    srr = err - mur * mur
    sigma2_sq = jnp.maximum(sigma1_sq + 2.0 * s1r + srr, 0.0)

    # The denominators are >= eps > 0: every branch stays finite, so plain selects suffice.
    denom = sigma1_sq + eps
    g_minus_1 = (s1r - eps) / denom
    sv_sq = srr - s1r * s1r / denom + eps * (sigma1_sq + 2.0 * s1r) / denom
    # The thresholds of vifp_mscale.m, in its order: a reference variance below eps zeroes both terms;
    # a distorted variance below eps or a negative gain zeroes the gain (the kept information is 0).
    ref_flat = sigma1_sq < eps
    keep = (~ref_flat) & (sigma2_sq >= eps) & (g_minus_1 >= -1.0)
    sigma1_sq = jnp.where(ref_flat, 0.0, sigma1_sq)
    g_minus_1 = jnp.where(keep, g_minus_1, -1.0)
    g = 1.0 + g_minus_1
    sv_sq = jnp.where(keep & (sv_sq > eps), sv_sq, eps)

    # Per position: kept - available = log((1 + a) / (1 + b)) = log1p((a - b) / (1 + b)), with
    # a = g^2 s11 / (sv_sq + n), b = s11 / n and a - b = s11 (n (g - 1)(g + 1) - sv_sq) / (n (sv_sq + n)).
    b = sigma1_sq / sigma_nsq
    a_minus_b = sigma1_sq * (sigma_nsq * g_minus_1 * (g + 1.0) - sv_sq) / (sigma_nsq * (sv_sq + sigma_nsq))
    available = jnp.log1p(b)
    excess = jnp.where(keep, jnp.log1p(a_minus_b / (1.0 + b)), -available)
    inv_ln10 = 1.0 / math.log(10.0)
    return (jnp.sum(excess, axis=(1, 2, 3)) * inv_ln10,
            jnp.sum(available, axis=(1, 2, 3)) * inv_ln10)


def one_minus_clipped(score: jax.Array) -> jax.Array:
    """The VIF loss ``1 - min(vif, 1)`` (piq's ``VIFLoss``; VIF is never negative, so its lower clamp at 0
    never acts). Scores at or above 1 (identical images, or ``x`` with more contrast than ``y``) give
    the loss 0 with gradient 0."""
    return 1.0 - jnp.where(score < 1.0, score, 1.0)


@functools.partial(jax.jit, static_argnames=("colour", "sigma_nsq", "eps", "ratio_eps"))
def vif(x: jax.Array, y: jax.Array, *, colour: str = "gray", sigma_nsq: float = 2.0, eps: float = 1e-10,
        ratio_eps: float = 0.0) -> jax.Array:
    """Pixel-domain VIF (``vifp_mscale.m``) per image: higher is better, 1 for identical images.

    Args:
      x: distorted images, N x H x W x 3 RGB (or N x H x W x 1 grey) in [0, 1], at least 41 x 41.
      y: reference images, the same shape, or one image (batch 1) shared by the batch.
      colour: RGB -> grey conversion: ``"gray"`` (MATLAB ``rgb2gray``, unrounded; default) or ``"luma"``
        (BT.601 ``0.299 R + 0.587 G + 0.114 B``, piq). Ignored for grey input.
      sigma_nsq: variance of the visual noise on the 0..255 scale (2, the authors' value).
      eps: the thresholds of ``vifp_mscale.m`` on the 0..255 variance scale (1e-10; piq: 1e-8).
      ratio_eps: added to both sums of the ratio, ``(num + ratio_eps) / (den + ratio_eps)`` (0; piq: 1e-8).

    Gradient: the thresholds are steps; the gradient is that of the branch each position falls in
    (zero for the terms a threshold zeroes: a reference or distorted variance below ``eps``, a negative
    gain, and the clamped ``sv^2``; the clamp of negative variances to 0 has gradient 0). A flat reference
    (``den == 0``) gives the score 1 with gradient 0.
    """
    if colour not in ("gray", "luma"):
        raise InputError(f"vif: colour must be 'gray' or 'luma', got {colour!r}")
    x, y = check_pair("vif", x, y, channels=(1, 3), min_size=VIF_MIN_SIZE)
    if x.shape[-1] == 3:
        convert = rgb_to_luma if colour == "luma" else functools.partial(rgb_to_gray, quantize=False)
        x, y = convert(x), convert(y)
    # Centring does not change any variance or covariance; it only reduces float32 cancellation.
    ref = (y - jnp.mean(y, axis=(1, 2, 3), keepdims=True)) * 255.0
    res = (x - jnp.mean(x, axis=(1, 2, 3), keepdims=True)) * 255.0 - ref
    excess = jnp.zeros(x.shape[:1], jnp.float32)
    den = jnp.zeros(x.shape[:1], jnp.float32)
    for scale in range(1, _NUM_SCALES + 1):
        size = 2 ** (_NUM_SCALES - scale + 1) + 1
        taps = gaussian_kernel_1d(size, size / 5.0)
        if scale > 1:
            both = _filter(jnp.concatenate([ref, res], axis=-1), taps, stride=2)
            ref, res = both[..., :1], both[..., 1:]
        e, d = _scale_information(ref, res, taps, eps, sigma_nsq)
        excess, den = excess + e, den + d
    # (num + ratio_eps) / (den + ratio_eps), written as 1 + (num - den) / (den + ratio_eps).
    den = den + ratio_eps
    defined = den > 0
    return 1.0 + jnp.where(defined, excess / jnp.where(defined, den, 1.0), 0.0)
