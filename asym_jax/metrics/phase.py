"""FSIM and FSIMc: feature similarity (Zhang, Zhang, Mou and Zhang, IEEE TIP 2011).

The defaults reproduce the authors' MATLAB code ``FeatureSIM.m`` (with the ``phasecong2`` it embeds,
after Kovesi), on the 0..255 scale:

* Colour: YIQ with the coefficients of ``FeatureSIM.m`` (Y = 0.299 R + 0.587 G + 0.114 B,
  I = 0.596 R - 0.274 G - 0.322 B, Q = 0.211 R - 0.523 G + 0.312 B), unrounded. Grey (N x H x W x 1)
  inputs are compared on their only channel; as in ``FeatureSIM.m``, FSIMc equals FSIM for them.
  ``yiq="piq"`` uses piq 0.8's four-decimal NTSC matrix (0.5959, -0.2746, -0.3213; 0.2115, -0.5227,
  0.3112); Y is the same.
* Downsampling by ``F = max(1, round(min(H, W) / 256))`` (MATLAB ``round``): ``downsample="conv2"``
  is ``conv2(I, fspecial('average', F), 'same')`` (zero padding; the box covers the pixels
  ``i - (ceil(F / 2) - 1) .. i + floor(F / 2)``) then ``I(1:F:end, 1:F:end)`` (output sides
  ``ceil(side / F)``); ``"avg_pool"`` is piq's ``avg_pool2d(kernel_size=F)`` (non-overlapping F x F
  blocks from the top-left corner, a partial last block dropped). The two agree when F = 1 (images
  under 384 pixels on the short side).
* Phase congruency (``phasecong2`` as in ``FeatureSIM.m``): log-Gabor filters built in the frequency
  domain, 4 scales, 4 orientations, minimum wavelength 6, mult 2, sigmaOnf 0.55, dThetaOnSigma 1.2,
  Butterworth low-pass (cutoff 0.45, order 15), noise threshold from the median of the smallest scale's
  squared amplitude with k = 2 and the empirical / 1.7, ``epsilon = 1e-4`` added to the local energy
  (piq adds the float machine epsilon instead: ``epsilon=2.2e-16`` reproduces it). The filters and the
  noise-model constants are computed once per image shape in float64 numpy; the FFTs run in float32
  (the image mean is removed first: every filter is zero at DC, so the result is unchanged and the
  float32 transform is more accurate). piq 0.8 builds its frequency grid with rows and columns
  exchanged in the polar angle (``atan2(-col, row)`` rather than ``atan2(-row, col)``);
  ``angle_grid="piq"`` reproduces it (the orientations then come out mirrored, which changes the
  value only through the filters' slight asymmetry on even-sized grids).
* Scharr gradients ``[3 0 -3; 10 0 -10; 3 0 -3] / 16`` and its transpose, ``conv2(..., 'same')``
  (zero padding), magnitude sqrt(Gx^2 + Gy^2).
* T1 = 0.85, T2 = 160, T3 = T4 = 200, lambda = 0.03; weighting by PCm = max(PC1, PC2);
  FSIM = sum(S_PC S_G PCm) / sum(PCm). FSIMc multiplies by ``real((S_I S_Q) ^ lambda)``
  (``chroma_power="real"``: for a negative product that is ``|S_I S_Q|^lambda cos(lambda pi)``);
  piq uses ``|S_I S_Q|^lambda`` (``chroma_power="abs"``).

The piq 0.8 variant is ``fsim(x, y, chromatic=..., epsilon=2.2e-16, downsample="avg_pool", yiq="piq",
chroma_power="abs", angle_grid="piq")``.

Where ``FeatureSIM.m`` divides 0 by 0 (flat images: no filter response anywhere), the value is defined
here instead of NaN: phase congruency is 0 where the summed amplitude is 0, and when PCm is 0 over the
whole image the score is the unweighted mean of the similarity map (1 for identical images).
Higher is better; 1 for identical images.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import (
    YIQ_3DEC, YIQ_NTSC, check_pair, conv2_box_downsample, downsample_factor, safe_power, scharr_magnitude, similarity,
)
from asym_jax.ops import safe_sqrt

__all__ = ["fsim", "phase_congruency"]

# Rows: Y, I, Q (``FeatureSIM.m``) and piq 0.8's rgb2yiq.
T1, T2, T3, T4, LAMBDA = 0.85, 160.0, 200.0, 200.0, 0.03
MIN_SIZE = 8


def _normalised_axis(n: int) -> np.ndarray:
    # Frequencies normalised to +/- 0.5 as phasecong2 and lowpassfilter lay them out.
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n // 2, n // 2) / n


@functools.lru_cache(maxsize=16)
def _filter_bank(height: int, width: int, scales: int, orientations: int, min_wavelength: float, mult: float,
                 sigma_on_f: float, d_theta_on_sigma: float, k: float, angle_grid: str):
    """(orientations, scales, H, W) float32 log-Gabor x angular filters (zero frequency at [0, 0]) and the
    per-orientation factor ``c`` with noise threshold ``T = c * sqrt(median |EO_1|^2)``."""
    v, u = np.meshgrid(_normalised_axis(height), _normalised_axis(width), indexing="ij")  # v: rows, u: columns
    radius = np.sqrt(u ** 2 + v ** 2)
    theta = np.arctan2(-v, u) if angle_grid == "featuresim" else np.arctan2(-u, v)
    radius, theta = np.fft.ifftshift(radius), np.fft.ifftshift(theta)
    lowpass = 1.0 / (1.0 + (radius / 0.45) ** 30)
    radius[0, 0] = 1.0
    radial = []
    for s in range(scales):
        centre = 1.0 / (min_wavelength * mult ** s)
        g = np.exp(-np.log(radius / centre) ** 2 / (2.0 * math.log(sigma_on_f) ** 2)) * lowpass
        g[0, 0] = 0.0
        radial.append(g)
    theta_sigma = math.pi / orientations / d_theta_on_sigma
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    bank = np.empty((orientations, scales, height, width))
    factors = np.empty(orientations)
    for o in range(orientations):
        angle = o * math.pi / orientations
        d_sin = sin_t * math.cos(angle) - cos_t * math.sin(angle)
        d_cos = cos_t * math.cos(angle) + sin_t * math.sin(angle)
        spread = np.exp(-np.arctan2(d_sin, d_cos) ** 2 / (2.0 * theta_sigma ** 2))
        for s in range(scales):
            bank[o, s] = radial[s] * spread
        mean_sq_filter = np.sum(bank[o, 0] ** 2)
        spatial = np.real(np.fft.ifft2(bank[o], axes=(-2, -1))) * math.sqrt(height * width)
        sum_an2 = np.sum(spatial ** 2)
        sum_ai_aj = sum(np.sum(spatial[i] * spatial[j]) for i in range(scales) for j in range(i + 1, scales))
        # noise power = median / ln 2 / mean_sq_filter; tau = sqrt(power (2 sum_an2 + 4 sum_ai_aj) / 2);
        # T = (tau sqrt(pi / 2) + k sqrt(2 - pi / 2) tau) / 1.7.
        tau_per_root_median = math.sqrt((2.0 * sum_an2 + 4.0 * sum_ai_aj) / (2.0 * math.log(2.0) * mean_sq_filter))
        factors[o] = tau_per_root_median * (math.sqrt(math.pi / 2.0) + k * math.sqrt(2.0 - math.pi / 2.0)) / 1.7
    return bank.astype(np.float32), factors.astype(np.float32)


def _divide(num: jax.Array, den: jax.Array, fallback: float | jax.Array = 0.0) -> jax.Array:
    """``num / den`` where ``den > 0``, ``fallback`` elsewhere, with finite gradients (double where)."""
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), fallback)


def _kth_smallest_bits(bits: jax.Array, rank: int) -> jax.Array:
    """The ``rank``-th smallest (0-based) of each row of non-negative float32 bit patterns ``bits``
    (M x n int32), by bisection on the integer order (which is the float order for values >= 0)."""
    lo = jnp.full(bits.shape[:1], -1, jnp.int32)
    hi = jnp.full(bits.shape[:1], 0x7F800000, jnp.int32)

    def step(_, bounds):
        lo, hi = bounds
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(bits <= mid[:, None], axis=-1, dtype=jnp.int32) > rank
        return jnp.where(enough, lo, mid), jnp.where(enough, mid, hi)

    return jax.lax.fori_loop(0, 31, step, (lo, hi))[1]


def _median(values: jax.Array) -> jax.Array:
    """MATLAB ``median`` of each row of non-negative ``values`` (M x n; the mean of the two middle values
    for even n). Selection by bisection: an XLA:CPU sort of these rows is several times slower.

    Gradient: each middle value's share goes, split equally, to the elements equal to it.
    """
    n = values.shape[-1]
    fixed = jax.lax.stop_gradient(values)
    bits = jax.lax.bitcast_convert_type(fixed, jnp.int32)
    lower_bits = _kth_smallest_bits(bits, (n - 1) // 2)
    chosen = [lower_bits]
    if n % 2 == 0:  # the next order statistic: the same value if it repeats, else the smallest above it
        repeats = jnp.sum(bits <= lower_bits[:, None], axis=-1) > n // 2
        above = jnp.min(jnp.where(bits > lower_bits[:, None], bits, jnp.int32(0x7F800000)), axis=-1)
        chosen.append(jnp.where(repeats, lower_bits, above))
    median = 0.0
    for chosen_bits in chosen:
        value = jax.lax.bitcast_convert_type(chosen_bits, jnp.float32)
        mask = (bits == chosen_bits[:, None]).astype(values.dtype)
        # Forward value exactly ``value``; derivative mask / count.
        delta = jnp.sum(mask * (values - fixed), axis=-1) / jnp.maximum(jnp.sum(mask, axis=-1), 1.0)
        median = median + (value + delta) / len(chosen)
    return jnp.where(jnp.any(jnp.isnan(values), axis=-1), jnp.nan, median)


def phase_congruency(y: jax.Array, *, scales: int = 4, orientations: int = 4, min_wavelength: float = 6.0,
                     mult: float = 2.0, sigma_on_f: float = 0.55, d_theta_on_sigma: float = 1.2, k: float = 2.0,
                     epsilon: float = 1e-4, angle_grid: str = "featuresim") -> jax.Array:
    """Phase congruency (``phasecong2`` of ``FeatureSIM.m``) of N x H x W images on the 0..255 scale.

    Gradients: the noise threshold's median passes its gradient to the middle element(s) (half each to
    the two middle values of an even count, split equally among elements tied with one); ``max(energy - T, 0)`` passes none where it clips (half at
    the tie); ``|.|`` and the square roots have gradient 0 at 0; PC is 0, with gradient 0, where the
    summed amplitude is 0.
    """
    _, height, width = y.shape
    bank, factors = _filter_bank(height, width, scales, orientations, float(min_wavelength), float(mult),
                                 float(sigma_on_f), float(d_theta_on_sigma), float(k), angle_grid)
    spectrum = jnp.fft.fft2(y - jnp.mean(y, axis=(1, 2), keepdims=True))

    def one_orientation(carry, inputs):
        energy_all, amplitude_all = carry
        filters, factor = inputs
        eo = jnp.fft.ifft2(spectrum[:, None] * filters[None])  # N x S x H x W
        even, odd = jnp.real(eo), jnp.imag(eo)
        power = jnp.square(even) + jnp.square(odd)
        amplitude = safe_sqrt(power)
        sum_even, sum_odd = jnp.sum(even, axis=1), jnp.sum(odd, axis=1)
        local = safe_sqrt(jnp.square(sum_even) + jnp.square(sum_odd)) + epsilon
        mean_even, mean_odd = _divide(sum_even, local)[:, None], _divide(sum_odd, local)[:, None]
        energy = jnp.sum(even * mean_even + odd * mean_odd - jnp.abs(even * mean_odd - odd * mean_even), axis=1)
        median = _median(power[:, 0].reshape(power.shape[0], -1))
        threshold = factor * safe_sqrt(median)[:, None, None]
        energy = jnp.maximum(energy - threshold, 0.0)
        return (energy_all + energy, amplitude_all + jnp.sum(amplitude, axis=1)), None

    zeros = jnp.zeros(y.shape, jnp.float32)
    (energy_all, amplitude_all), _ = jax.lax.scan(one_orientation, (zeros, zeros),
                                                  (jnp.asarray(bank), jnp.asarray(factors)))
    return _divide(energy_all, amplitude_all)


def _avg_pool(x: jax.Array, factor: int) -> jax.Array:
    summed = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, factor, factor, 1), (1, factor, factor, 1), "VALID")
    return summed / float(factor * factor)


@functools.partial(jax.jit, static_argnames=(
    "chromatic", "scales", "orientations", "min_wavelength", "mult", "sigma_on_f", "d_theta_on_sigma", "k",
    "epsilon", "downsample", "yiq", "chroma_power", "angle_grid"))
def fsim(x: jax.Array, y: jax.Array, *, chromatic: bool = False, scales: int = 4, orientations: int = 4,
         min_wavelength: float = 6.0, mult: float = 2.0, sigma_on_f: float = 0.55, d_theta_on_sigma: float = 1.2,
         k: float = 2.0, epsilon: float = 1e-4, downsample: str = "conv2", yiq: str = "featuresim",
         chroma_power: str = "real", angle_grid: str = "featuresim") -> jax.Array:
    """FSIM (``chromatic=False``) or FSIMc per image; x distorted, y reference (or one reference shared by
    the batch), NHWC RGB or grey in [0, 1], at least 8 x 8. See the module docstring for the conventions
    and the piq 0.8 options.

    Gradients where the model is not differentiable: PCm = max(PC1, PC2) passes the gradient to the larger
    map (half to each at a tie); the median in the noise threshold passes it to the middle element(s);
    the threshold ``max(E - T, 0)`` passes none where it clips; gradient magnitudes, amplitudes and
    ``|.|`` have gradient 0 at 0; ``real((S_I S_Q)^lambda)`` is ``|p|^lambda`` (times ``cos(lambda pi)``
    for p < 0) with gradient 0 at p = 0 (``safe_power``).
    """
    if downsample not in ("conv2", "avg_pool"):
        raise InputError(f"fsim: downsample must be 'conv2' or 'avg_pool', got {downsample!r}")
    if yiq not in ("featuresim", "piq"):
        raise InputError(f"fsim: yiq must be 'featuresim' or 'piq', got {yiq!r}")
    if chroma_power not in ("real", "abs"):
        raise InputError(f"fsim: chroma_power must be 'real' or 'abs', got {chroma_power!r}")
    if angle_grid not in ("featuresim", "piq"):
        raise InputError(f"fsim: angle_grid must be 'featuresim' or 'piq', got {angle_grid!r}")
    x, y = check_pair("fsim", x, y, channels=(1, 3), min_size=MIN_SIZE, keep_shared=True)
    colour = x.shape[-1] == 3
    chromatic = chromatic and colour

    def prepare(img):
        img = img * 255.0
        if colour:
            matrix = jnp.asarray(YIQ_3DEC if yiq == "featuresim" else YIQ_NTSC, jnp.float32)
            img = jnp.einsum("nhwc,kc->nhwk", img, matrix, precision=jax.lax.Precision.HIGHEST)
            if not chromatic:
                img = img[..., :1]
        factor = downsample_factor(*img.shape[1:3])
        if factor > 1:
            img = conv2_box_downsample(img, factor) if downsample == "conv2" else _avg_pool(img, factor)
        return img

    x, y = prepare(x), prepare(y)
    options = dict(scales=scales, orientations=orientations, min_wavelength=min_wavelength, mult=mult,
                   sigma_on_f=sigma_on_f, d_theta_on_sigma=d_theta_on_sigma, k=k, epsilon=epsilon,
                   angle_grid=angle_grid)
    lum_x, lum_y = x[..., 0], y[..., 0]
    pc_x, pc_y = phase_congruency(lum_x, **options), phase_congruency(lum_y, **options)
    gm_x, gm_y = (scharr_magnitude(lum[..., None])[..., 0] for lum in (lum_x, lum_y))
    similarity_map = similarity(pc_x, pc_y, T1) * similarity(gm_x, gm_y, T2)
    if chromatic:
        product = similarity(x[..., 1], y[..., 1], T3) * similarity(x[..., 2], y[..., 2], T4)
        chroma = safe_power(jnp.abs(product), LAMBDA)
        if chroma_power == "real":
            chroma = jnp.where(product < 0, math.cos(LAMBDA * math.pi) * chroma, chroma)
        similarity_map = similarity_map * chroma
    weight = jnp.maximum(pc_x, pc_y)
    weight_sum = jnp.sum(weight, axis=(1, 2))
    unweighted = jnp.mean(similarity_map, axis=(1, 2))
    return _divide(jnp.sum(similarity_map * weight, axis=(1, 2)), weight_sum, unweighted)
