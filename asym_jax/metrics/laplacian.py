"""NLPD: normalised Laplacian pyramid distance (Laparra, Ballé, Berardino, Simoncelli, HVEI 2016).

The image is split into a Laplacian pyramid, every coefficient is divided by a weighted sum of the
magnitudes of its neighbours plus a constant, and the distance is the mean over the bands of the
root-mean-square difference of the normalised coefficients. Lower is better; 0 for identical images.

``variant="laparra2016"`` (default) follows the authors' MATLAB code ``NLP_dist.m`` (the file linked from
the NLPyr page of Simoncelli's laboratory):

* input: a grey image in [0, 1], used as it is (the code applies no gamma or other pointwise
  nonlinearity, and its constants are on the [0, 1] scale). An RGB input is first converted to grey with
  ``colour``: ``"gray"`` (default, MATLAB ``rgb2gray`` unrounded; the code names no conversion),
  ``"luma"`` (BT.601 ``0.299 R + 0.587 G + 0.114 B``, pyiqa's default), ``"y"`` (BT.601 limited-range
  Y / 255, unrounded) or ``"rgb"`` (each channel transformed separately; the band RMS is taken over all
  channels together).
* pyramid (Burt and Adelson's construction as in the code): low-pass with the outer product of
  ``[0.05, 0.25, 0.4, 0.25, 0.05]`` after symmetric padding (``imfilter(..., 'symmetric')``), keep every
  second pixel from the first; expand by padding the coarse image by one replicated pixel, inserting
  zeros, scaling by 4, filtering with the same kernel, and cropping to the finer size. Bands 1..5 are
  the differences, band 6 the low-pass residual (``levels`` bands in all: ``levels - 1`` differences
  and the residual).
* divisive normalisation: ``band / (sigma_b + conv2(|band|, P_b, 'same'))`` (true convolution, zero
  padding) with the published sigmas ``(0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)`` and the
  published 5 x 5 filters P_b (including P_1's small 0.0072 entry two columns right of its centre).
  With ``levels < 6`` bands 1..levels-1 keep their parameters and the residual uses the residual's
  (the sixth) parameters: the code itself always builds six levels.
* distance: ``mean_b sqrt(mean((z_b(x) - z_b(y))^2))`` (exponents 2 and 1 in the code).

``variant="pyiqa"`` is pyiqa's ``NLPD`` (``pyiqa/archs/nlpd_arch.py``, default ``test_y_channel=True``):
the same pyramid and convolution with the 3 x 3 centres of the normalisation filters (the 0.0072 tap of
P_1 dropped), on pyiqa's ``to_y_channel``: BT.601 luma by default (``colour="luma"``, its current
``color_space='yiq'``; ``colour="y"`` gives the limited-range Y of its ``'ycbcr'`` option).

``variant="ding"`` is ``IQA_pytorch/NLPD.py`` of Ding et al.'s IQA-optimization code (the NLPD of their
IJCV 2021 comparison of IQA models as optimisation objectives), applied to every RGB channel by default
(``colour="rgb"``, the class's default ``channels=3``; the band RMS pools all channels together):
``levels`` (default 6) band-pass levels and no low-pass residual; low-pass with the same 5 x 5 kernel
after reflect padding (``ReflectionPad2d(2)``, the edge pixel not repeated) keeping every second pixel;
expansion by bilinear interpolation with ``align_corners=True`` to twice the size, then the 5 x 5 kernel
again after reflect padding (no factor 4), cropped to the finer size when it is odd (what
``F.interpolate(..., mode='nearest')`` does there); normalisation by the 3 x 3 centres of P_b applied as a
correlation (not flipped) after reflect padding by one pixel, with the same sigmas.

Minimum sizes: the coarsest level must keep 2 pixels per side for the MATLAB pyramid
(``2^(levels - 1) + 1``: 33 px for six levels), and 3 for the ``ding`` variant's reflect padding
(``2^levels + 1``: 65 px for six levels, 33 for five). For SR training on 64 px crops use the default
variant, or ``variant="ding", levels=5``.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair, rgb_to_gray, rgb_to_luma, rgb_to_y
from asym_jax.metrics.saliency import torch_bilinear_matrix
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = ["NLPD_SIGMAS", "nlpd", "nlpd_bands"]

LOWPASS = (0.05, 0.25, 0.4, 0.25, 0.05)
NLPD_SIGMAS = (0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782)
# The normalisation filters P_b as their nonzero entries ((row, column) in the 5 x 5 MATLAB matrix, 0-based,
# centre (2, 2)) -> weight. Published values (NLP_dist.m, DN_filters).
_DN_FILTERS = (
    {(1, 2): 0.1011, (2, 1): 0.1493, (2, 3): 0.1460, (2, 4): 0.0072, (3, 2): 0.1015},
    {(1, 2): 0.0757, (2, 1): 0.1986, (2, 3): 0.1846, (3, 2): 0.0837},
    {(1, 2): 0.0477, (2, 1): 0.2138, (2, 3): 0.2243, (3, 2): 0.0467},
    {(2, 1): 0.2503, (2, 3): 0.2616},
    {(2, 1): 0.2598, (2, 3): 0.2552},
    {(2, 1): 0.2215, (2, 3): 0.0717},
)
VARIANTS = ("laparra2016", "pyiqa", "ding")
_DEFAULT_COLOUR = {"laparra2016": "gray", "pyiqa": "luma", "ding": "rgb"}


def min_size(variant: str = "laparra2016", levels: int = 6) -> int:
    """Smallest image side ``nlpd`` accepts for this variant and depth."""
    return 2 ** levels + 1 if variant == "ding" else 2 ** (levels - 1) + 1


def _pad(x: jax.Array, width: int, mode: str) -> jax.Array:
    return jnp.pad(x, ((0, 0), (width, width), (width, width), (0, 0)), mode=mode)


def _taps_filter(x: jax.Array, taps: dict, *, flip: bool, mode: str) -> jax.Array:
    """Filters each channel with a 5 x 5 kernel (same size) whose nonzero taps all lie on its centre row and
    centre column (true of every P_b): a 1-D filter along W plus one along H. ``flip``: MATLAB ``conv2``
    (the kernel rotated by 180 degrees); otherwise a correlation. Borders padded with ``mode``."""
    row, col = np.zeros(5), np.zeros(5)
    for (r, c), weight in taps.items():
        if r == 2:
            row[c] += weight
        elif c == 2:
            col[r] += weight
        else:
            raise ValueError(f"tap {(r, c)} is off the centre row and column")
    if flip:
        row, col = row[::-1], col[::-1]
    total = 0.0
    for axis, kernel in ((2, row), (1, col)):
        nonzero = np.nonzero(kernel)[0]
        if not len(nonzero):
            continue
        reach = int(max(abs(nonzero - 2)))  # the kernel is centred on index 2
        pad = [(0, 0)] * 4
        pad[axis] = (reach, reach)
        total = total + correlate1d(jnp.pad(x, pad, mode=mode), kernel[2 - reach:3 + reach], axis=axis)
    return total


def _matlab_reduce(x: jax.Array) -> jax.Array:
    # imfilter(I, f'*f, 'symmetric') then I(1:2:end, 1:2:end).
    padded = _pad(x, 2, "symmetric")
    return correlate1d(correlate1d(padded, LOWPASS, axis=1, stride=2), LOWPASS, axis=2, stride=2)


def _matlab_expand_axis(x: jax.Array, axis: int, size: int) -> jax.Array:
    # One axis of: pad 1 replicated pixel, insert zeros, times 2, filter (zero 'same'), crop 2 each side and
    # the last sample when ``size`` is odd. The zero padding of the filter never reaches the kept samples, so
    # the even outputs are 2 * (0.05, 0.4, 0.05) and the odd ones 2 * (0.25, 0.25) over the padded samples.
    n = x.shape[axis]
    pad = [(0, 0)] * x.ndim
    pad[axis] = (1, 1)
    padded = jnp.pad(x, pad, mode="edge")
    even = correlate1d(padded, (0.1, 0.8, 0.1), axis=axis)
    odd = correlate1d(jax.lax.slice_in_dim(padded, 1, n + 2, axis=axis), (0.5, 0.5), axis=axis)
    both = jnp.stack([even, odd], axis=axis + 1)
    shape = list(x.shape)
    shape[axis] = 2 * n
    return jax.lax.slice_in_dim(both.reshape(shape), 0, size, axis=axis)


def _matlab_expand(x: jax.Array, height: int, width: int) -> jax.Array:
    return _matlab_expand_axis(_matlab_expand_axis(x, 1, height), 2, width)


def _ding_level(j: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One level of IQA_pytorch's pyramid: (band, coarser image)."""
    coarse = correlate1d(correlate1d(_pad(j, 2, "reflect"), LOWPASS, axis=1, stride=2), LOWPASS, axis=2, stride=2)
    rows = jnp.asarray(torch_bilinear_matrix(coarse.shape[1], 2 * coarse.shape[1], True), jnp.float32)
    cols = jnp.asarray(torch_bilinear_matrix(coarse.shape[2], 2 * coarse.shape[2], True), jnp.float32)
    up = jnp.einsum("nhwc,ph,qw->npqc", coarse, rows, cols, precision=jax.lax.Precision.HIGHEST)
    up = correlate1d(correlate1d(_pad(up, 2, "reflect"), LOWPASS, axis=1), LOWPASS, axis=2)
    return j - up[:, :j.shape[1], :j.shape[2], :], coarse


def nlpd_bands(x: jax.Array, *, variant: str = "laparra2016", levels: int = 6) -> list[jax.Array]:
    """The normalised pyramid of NHWC images already in the variant's colour space (finest band first)."""
    bands = []
    if variant == "ding":
        j = x
        for level in range(levels):
            band, j = _ding_level(j)
            taps = {k: v for k, v in _DN_FILTERS[level].items() if max(abs(k[0] - 2), abs(k[1] - 2)) <= 1}
            amplitude = _taps_filter(jnp.abs(band), taps, flip=False, mode="reflect")
            bands.append(band / (NLPD_SIGMAS[level] + amplitude))
        return bands
    j = x
    laplacian = []
    for _ in range(levels - 1):
        coarse = _matlab_reduce(j)
        laplacian.append(j - _matlab_expand(coarse, j.shape[1], j.shape[2]))
        j = coarse
    laplacian.append(j)
    parameters = list(range(levels - 1)) + [5]  # the residual always uses the residual's parameters
    for band, index in zip(laplacian, parameters):
        taps = _DN_FILTERS[index]
        if variant == "pyiqa":
            taps = {k: v for k, v in taps.items() if max(abs(k[0] - 2), abs(k[1] - 2)) <= 1}
        amplitude = _taps_filter(jnp.abs(band), taps, flip=True, mode="constant")
        bands.append(band / (NLPD_SIGMAS[index] + amplitude))
    return bands


def _to_colour(x: jax.Array, colour: str) -> jax.Array:
    if x.shape[-1] == 1 or colour == "rgb":
        return x
    if colour == "gray":
        return rgb_to_gray(x, quantize=False)
    if colour == "luma":
        return rgb_to_luma(x)
    if colour == "y":
        return rgb_to_y(x, quantize=False)
    raise InputError(f"nlpd: colour must be 'gray', 'luma', 'y' or 'rgb', got {colour!r}")


@functools.partial(jax.jit, static_argnames=("variant", "colour", "levels"))
def nlpd(x: jax.Array, y: jax.Array, *, variant: str = "laparra2016", colour: str | None = None,
         levels: int = 6) -> jax.Array:
    """NLPD per image (lower is better, 0 for identical images); NHWC RGB or grey images in [0, 1].

    ``variant``: ``"laparra2016"`` (the authors' NLP_dist.m), ``"pyiqa"`` or ``"ding"`` (IQA_pytorch);
    ``colour``: ``None`` for the variant's own (``"gray"``, ``"luma"``, ``"rgb"`` respectively), or one of
    ``"gray"``, ``"luma"``, ``"y"``, ``"rgb"``; ``levels``: pyramid depth, 1 to 6 (see the module docstring).

    Gradient at the model's non-differentiable points: where a band's normalised coefficients of x and
    y are all equal (in particular x == y) the square root of its mean squared difference has gradient 0
    (the minimum); at a Laplacian coefficient exactly 0, ``|.|`` in the normalising amplitude takes
    JAX's derivative +1 (any value in [-1, 1] is a subgradient; the effect is bounded).
    """
    if variant not in VARIANTS:
        raise InputError(f"nlpd: variant must be one of {VARIANTS}, got {variant!r}")
    if not 1 <= levels <= 6:
        raise InputError(f"nlpd: levels must be 1 to 6 (the published parameters), got {levels}")
    x, y = check_pair(f"nlpd ({variant}, {levels} levels)", x, y, channels=(1, 3),
                      min_size=min_size(variant, levels), keep_shared=True)
    colour = _DEFAULT_COLOUR[variant] if colour is None else colour
    x, y = _to_colour(x, colour), _to_colour(y, colour)
    # One pyramid for both batches: identical images then give bit-identical bands (two separately compiled
    # pyramids may round differently, and the RMS's gradient near 0 is d / |d|, not small).
    count = x.shape[0]
    total = 0.0
    for band in nlpd_bands(jnp.concatenate([x, y], axis=0), variant=variant, levels=levels):
        total = total + safe_sqrt(jnp.mean(jnp.square(band[:count] - band[count:]), axis=(1, 2, 3)))
    return total / levels
