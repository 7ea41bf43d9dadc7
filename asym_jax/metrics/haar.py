"""HaarPSI: the Haar wavelet-based perceptual similarity index (Reisenhofer, Bosse, Kutyniok, Wiegand 2018).

The default follows the authors' MATLAB code (``HaarPSI.m``, github.com/rgcda/haarpsi), on the 0..255 scale:

* colour: YIQ with ``HaarPSI.m``'s three-decimal matrix (Y = 0.299 R + 0.587 G + 0.114 B, I = 0.596 R -
  0.274 G - 0.322 B, Q = 0.211 R - 0.523 G + 0.312 B); grey (1 channel) inputs are used as they are;
* preprocessing (``subsample``): every channel averaged over 2 x 2 pixels with zero padding at the
  bottom/right (``conv2(img, ones(2) / 4, 'same')``) and every second pixel kept (output ``ceil(side / 2)``);
  the factor is always 2, whatever the image size;
* three Haar scales ``k = 1, 2, 3``: a ``2^k x 2^k`` filter ``2^-k`` with one half negated, in both
  orientations, ``conv2(..., 'same')`` with zero padding (``2^(k-1) - 1`` pixels before, ``2^(k-1)`` after);
* per orientation, the similarity ``(2 |a| |b| + C) / (a^2 + b^2 + C)`` of the first two scales, averaged,
  weighted by ``max(|a_3|, |b_3|)`` of the third scale, C = 30;
* colour form: a third map, the mean of the I and Q similarities of the 2 x 2-averaged ``|I|``, ``|Q|``
  (zero padding at the bottom/right), weighted by the mean of the two orientation weights;
* score ``(logit(sum(w * sigmoid(alpha * s)) / sum(w)) / alpha)^2``, alpha = 4.2; 1 for identical images.

piq 0.8 (``piq.haarpsi``) computes the same model with two differences: the YIQ matrix of four decimals
(``yiq="piq"``) and an epsilon (2.2e-16 in float64) added to both sums of the weighted mean, which
changes nothing measurable except on images whose weights are all zero (piq returns inf there; see below).
Its subsampling and 'same' borders equal ``HaarPSI.m``'s.

Where every weight is zero (both images black, since the zero-padded borders of any other image have
non-zero coarse coefficients) the weighted mean is 0 / 0 in ``HaarPSI.m``; here it is taken as that of
identical images, so the score is 1 and its gradient 0 there.

Numerics (float32): each local similarity is carried as its distance to 1, ``(|a| - |b|)^2 / (a^2 + b^2 +
C)``, and the logit of the weighted mean as ``alpha`` plus a correction (see :func:`haarpsi`): the same
function as HaarPSI.m's, to about 2e-7 relative, with identical images scoring exactly 1 and a gradient of
exactly 0 at ``x == y``. Inputs must be at least 16 x 16 pixels (piq's limit: the 8 x 8 Haar filter on the
half-size image).

Gradients match piq's float64 autograd except at the model's kinks (a coefficient exactly 0, equal coarse
weights in ``max``), which 8-bit images hit often in exact arithmetic; float32 rounding may put such a
point on either side, so the (sub)gradient chosen there can differ from piq's; and at an exact 0, ``|t|``
takes JAX's derivative +1 where PyTorch takes 0 (see :func:`haarpsi`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError
from asym_jax.metrics.common import YIQ_3DEC, YIQ_NTSC, check_pair, conv2_box_downsample
from asym_jax.ops import correlate1d

__all__ = ["haarpsi"]

# Rows Y, I, Q applied to R, G, B: HaarPSI.m's three decimals, or piq's rgb2yiq (four).
_YIQ = {"matlab": YIQ_3DEC, "piq": YIQ_NTSC}

SCALES = 3
MIN_SIZE = 16  # the coarsest Haar filter (8 x 8) on the half-size image, as piq requires


def _pad(x: jax.Array, before: int, after: int) -> jax.Array:
    return jnp.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))


def _mean2x2(x: jax.Array, stride: int) -> jax.Array:
    """``conv2(x, ones(2) / 4, 'same')`` (each pixel with its right/lower neighbours, zeros past the edge),
    keeping every ``stride``-th pixel from the first."""
    if stride == 2:
        return conv2_box_downsample(x, 2)
    x = _pad(x, 0, 1)
    return correlate1d(correlate1d(x, (0.5, 0.5), axis=1), (0.5, 0.5), axis=2)


def _haar(x: jax.Array, scale: int) -> tuple[jax.Array, jax.Array]:
    """Haar coefficients of scale ``scale`` (1-based) across rows and across columns, 'same' size. Their
    sign is that of a correlation with the lower/right half positive (only magnitudes are used)."""
    half = 2 ** (scale - 1)
    padded = _pad(x, half - 1, half)
    box = (2.0 ** -scale,) * (2 * half)
    step = (-1.0,) * half + (1.0,) * half
    across_rows = correlate1d(correlate1d(padded, step, axis=1), box, axis=2)
    across_cols = correlate1d(correlate1d(padded, box, axis=1), step, axis=2)
    return across_rows, across_cols


def _dissimilarity(a: jax.Array, b: jax.Array, c: float) -> jax.Array:
    """``1 - (2 |a| |b| + c) / (a^2 + b^2 + c)``, computed as ``(|a| - |b|)^2 / (a^2 + b^2 + c)`` (no
    cancellation: exactly 0 for equal magnitudes)."""
    return jnp.square(jnp.abs(a) - jnp.abs(b)) / (jnp.square(a) + jnp.square(b) + c)


@functools.partial(jax.jit, static_argnames=("subsample", "chromatic", "yiq", "c", "alpha"))
def haarpsi(x: jax.Array, y: jax.Array, *, subsample: bool = True, chromatic: bool = True, yiq: str = "matlab",
            c: float = 30.0, alpha: float = 4.2) -> jax.Array:
    """HaarPSI per image (higher is better, 1 for identical images); NHWC RGB or grey images in [0, 1].

    Options: ``subsample`` (``HaarPSI.m``'s ``preprocessWithSubsampling``, piq's ``subsample``);
    ``chromatic`` (RGB inputs: add the I/Q map; False scores the luma Y alone with the grey form); ``yiq``
    (``"matlab"``: HaarPSI.m's matrix; ``"piq"``: piq's); ``c`` and ``alpha`` on the 0..255 scale.

    Gradients: the magnitudes ``|t|`` of the Haar and I/Q coefficients take JAX's derivative +1 where
    ``t = 0`` (PyTorch's ``abs``, hence piq, takes 0: that would leave a black or flat ``x`` with no gradient
    at all, a ridge of the loss where +1 still gives a descent direction), and ``max(|a_3|, |b_3|)`` splits
    the gradient evenly at ties (JAX's rule, as PyTorch's). At ``x == y`` the
    gradient is 0 (a maximum of every local similarity, and the weights do not move the mean). Where all
    weights are 0 (both images black) the gradient is 0.
    """
    if yiq not in _YIQ:
        raise InputError(f"haarpsi: yiq must be 'matlab' or 'piq', got {yiq!r}")
    x, y = check_pair("haarpsi", x, y, channels=(1, 3), min_size=MIN_SIZE)
    colour = x.shape[-1] == 3
    # One batch of 2N images: every filter runs once.
    images = jnp.concatenate([x, y], axis=0) * 255.0
    if colour:
        matrix = jnp.asarray(_YIQ[yiq] if chromatic else _YIQ[yiq][:1], jnp.float32)
        images = jnp.einsum("nhwc,kc->nhwk", images, matrix, precision=jax.lax.Precision.HIGHEST)
    chromatic = colour and chromatic
    if subsample:
        images = _mean2x2(images, stride=2)
    luma = images[..., :1]
    n = x.shape[0]

    coefficients = [_haar(luma, scale) for scale in range(1, SCALES + 1)]
    gaps, weights = [], []  # 1 - local similarity, and its weight, per map
    for orientation in range(2):
        fine = [coefficients[s][orientation] for s in range(SCALES - 1)]
        gaps.append(sum(_dissimilarity(f[:n], f[n:], c) for f in fine) / (SCALES - 1))
        coarse = jnp.abs(coefficients[SCALES - 1][orientation])
        weights.append(jnp.maximum(coarse[:n], coarse[n:]))
    if chromatic:
        iq = _mean2x2(images[..., 1:], stride=1)
        gaps.append(jnp.sum(_dissimilarity(iq[:n], iq[n:], c), axis=-1, keepdims=True) / 2.0)
        weights.append((weights[0] + weights[1]) / 2.0)
    gap = jnp.concatenate(gaps, axis=-1)
    weight = jnp.concatenate(weights, axis=-1)

    # The weighted mean of sigmoid(alpha s) is written as sigmoid(alpha) + delta, where delta (<= 0) is the
    # weighted mean of sigmoid(alpha (1 - g)) - sigmoid(alpha) = -(1 - sigmoid(alpha)) expm1(alpha g) /
    # (1 + exp(alpha (g - 1))), and logit(sigmoid(alpha) + delta) = alpha + log1p(delta / sigmoid(alpha)) -
    # log1p(-delta / (1 - sigmoid(alpha))): the same numbers as HaarPSI.m's, without float32 cancellation
    # (identical images score exactly 1).
    top = 1.0 / (1.0 + math.exp(-alpha))  # sigmoid(alpha), in float64
    change = -(1.0 - top) * jnp.expm1(alpha * gap) / (1.0 + jnp.exp(alpha * (gap - 1.0)))
    total = jnp.sum(weight, axis=(1, 2, 3))
    some = total > 0
    delta = jnp.where(some, jnp.sum(change * weight, axis=(1, 2, 3)) / jnp.where(some, total, 1.0), 0.0)
    # Every local similarity lies in (0, 1], so delta lies in (1/2 - sigmoid(alpha), 0]: both log1p are finite.
    logit_over_alpha = 1.0 + (jnp.log1p(delta / top) - jnp.log1p(-delta / (1.0 - top))) / alpha
    return jnp.square(logit_over_alpha)
