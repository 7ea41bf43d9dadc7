"""MAD: most apparent distortion (Larson and Chandler, J. Electronic Imaging 19(1) 011006, 2010).

Follows the authors' MATLAB release ``MAD_index.m`` (2011 version, with the ``ical_std`` / ``ical_stat``
MEX helpers) step by step; lower is better, 0 for identical images. Conventions of the default:

* Grey: MATLAB ``rgb2gray`` weights, unrounded (``colour="gray"``; ``colour="luma"`` takes BT.601 luma
  ``0.299 R + 0.587 G + 0.114 B``); grey N x H x W x 1 inputs are used as they are. The model works on the
  0..255 scale. No downsampling (MAD has none).
* Detection stage (``hi_index``, d_detect): luminance ``0.02874 * I ** (2.2 / 3)``; the contrast
  sensitivity function of ``make_csf(H, W, 32)'`` (radial frequency of the centred, half-pixel-offset grid
  divided by the image *width* times 64 on both axes, 3 dB diagonal dip ``w = 0.7``, flat 0.9809 below
  7.8909 cycles per degree) applied in the frequency domain, real part kept. On 16 x 16 blocks at stride 4
  (each block's values fill the 4 x 4 pixels at its top-left corner, as the MEX code writes them):
  mean of the filtered reference, standard deviation (N - 1) of the filtered error ``dst - ref``, and the
  reference's "modified" deviation: the smallest standard deviation (N - 1) of the 8 x 8 blocks starting at
  the block and at the next block(s) (4 pixels on), a neighbour counting only where the MEX test
  ``start + 5 < side - 15`` admits it. Masking map ``max(0, ln(sd_err / max(sd_ref_mod, mean * e^-5)))``
  (the published piecewise form with C_slope = 1, thresholds -5), zero where the reference's local mean
  is below G = 0.5; times the local MSE of the 0..255 grey images over 16 x 16 windows (rows r - 7 .. r + 8:
  MATLAB's ``imfilter(..., 'conv')`` window; the 'symmetric' border never reaches the kept region);
  16 pixels (17 at the bottom/right) cut from every border; root mean square times 200.
* Appearance stage (``lo_index``, d_appear): Kovesi's log-Gabor filters as Larson altered them, 5 scales
  (wavelengths 3, 9, 27, 81, 243) x 4 orientations, sigmaOnf 0.55, dThetaOnSigma 1.5, on the grid and with
  the centre-pixel fudge of the MATLAB code (``round(side / 2 + 1)``: for odd sides the zeroed pixel is not
  the zero frequency, reproduced); applied to the 0..255 grey images. On the magnitude of each response, per
  16 x 16 block at stride 4: standard deviation (N - 1), skewness and kurtosis (moments over N); the map
  ``sum_s w_s sum_o (|d std| + 2 |d skew| + |d kurt|)`` with scale weights (0.5, 0.75, 1, 5, 6) / 13.25;
  the same border cut; root mean square.
* ``MAD = d_detect ** alpha * d_appear ** (1 - alpha)``, ``alpha = 1 / (1 + b1 * d_detect ** b2)`` with
  ``b1 = exp(-2.55 / 3.35) = 0.4671``, ``b2 = 1 / (ln 10 * 3.35) = 0.1296`` (the code's thresholds; the paper
  rounds them to 0.467 and 0.130).

Departures, all documented: the block moments are float32; a block whose log-Gabor magnitude has a
standard deviation at or below ``FLAT_STD`` (1e-3 grey levels: invisible) counts as flat, like the MEX
code's exact-zero test (whose float64 round-off noise would otherwise give float32 round-off kurtoses);
inputs below 0 enter the luminance power as 0.

piq 0.8 has no MAD. pyiqa's MAD (after Ding et al.'s IQA_pytorch) departs from the authors' code: it uses
the limited-range Y channel, the 16 x 16 block statistics on the block grid without the border cut, a
stride-4 'valid' local MSE, half the minimum 16 x 16 deviation of the block and its previous neighbours as
the modified deviation, N in the deviation, epsilons in the logs and the power, a centre-pixel fudge one
pixel off, and weights the 20 log-Gabor maps by orientation instead of by scale (the weight 6 is unused).

Minimum size 34 x 34 (the border cut keeps at least one row and column).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from asym_jax.errors import InputError
from asym_jax.metrics.common import check_pair, rgb_to_gray, rgb_to_luma, safe_power
from asym_jax.ops import correlate1d, safe_sqrt

__all__ = ["FLAT_STD", "MIN_SIZE", "mad", "mad_stages"]

MIN_SIZE = 34
FLAT_STD = 1e-3  # grey levels (0..255): log-Gabor blocks this flat count as flat (zero skewness and kurtosis)
_K = 0.02874  # luminance: K * grey ** (2.2 / 3)
_G = 0.5  # mean luminance below which a block is not masked (map 0)
_CD = -5.0  # ln contrast threshold (Ci_thrsh = Cd_thrsh = -5, C_slope = 1)
_SCALE_WEIGHTS = (0.5, 0.75, 1.0, 5.0, 6.0)
_EDGE = 16  # BSIZE: border cut (16 before, 17 after)


# ---------------------------------------------------------------------------------------------- filters

@functools.lru_cache(maxsize=32)
def _csf_filter(rows: int, cols: int) -> np.ndarray:
    """The CSF of ``make_csf(rows, cols, 32)'`` moved to the unshifted FFT layout (``ifftshift``) and made
    even (the real part of a real image's filtered inverse FFT only sees the even part), for ``rfft2``."""
    u = np.arange(rows, dtype=np.float64) - rows / 2.0 + 0.5  # the transposed x of make_csf: along rows
    v = np.arange(cols, dtype=np.float64) - cols / 2.0 + 0.5
    plane = (u[:, None] + 1j * v[None, :]) / cols * 2.0 * 32.0
    radfreq = np.abs(plane)
    w = 0.7
    radfreq = radfreq / ((1.0 - w) / 2.0 * np.cos(4.0 * np.angle(plane)) + (1.0 + w) / 2.0)
    csf = 2.6 * (0.0192 + 0.114 * radfreq) * np.exp(-(0.114 * radfreq) ** 1.1)
    csf[radfreq < 7.8909] = 0.9809
    h = np.fft.ifftshift(csf)
    flipped = np.roll(h[::-1, ::-1], 1, axis=(0, 1))  # h(-k)
    even = (h + flipped) / 2.0
    return even[:, : cols // 2 + 1].astype(np.float32)


@functools.lru_cache(maxsize=32)
def _log_gabor_bank(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
    """The 20 log-Gabor transfer functions (scale-major, FFT layout) and each one's scale weight."""
    nscale, norient, sigma_on_f, d_theta_on_sigma = 5, 4, 0.55, 1.5
    wavelengths = [3.0 * 3.0 ** s for s in range(nscale)]
    x = np.ones((rows, 1)) * (np.arange(cols, dtype=np.float64) - cols / 2.0)[None, :] / (cols / 2.0)
    y = (np.arange(rows, dtype=np.float64) - rows / 2.0)[:, None] * np.ones((1, cols)) / (rows / 2.0)
    radius = np.sqrt(x ** 2 + y ** 2)
    cr, cc = math.floor(rows / 2 + 1 + 0.5) - 1, math.floor(cols / 2 + 1 + 0.5) - 1  # MATLAB round, 0-based
    radius[cr, cc] = 1.0
    log_radius = np.log(radius)
    theta = np.arctan2(-y, x)
    sin_t, cos_t = np.sin(theta), np.cos(theta)
    theta_sigma = math.pi / norient / d_theta_on_sigma
    radial = []
    for s in range(nscale):
        rfo = (1.0 / wavelengths[s]) / 0.5
        g = np.exp((log_radius - np.log(rfo)) ** 2 / -(2.0 * np.log(sigma_on_f) ** 2))
        g[cr, cc] = 0.0
        radial.append(g)
    filters, weights = [], []
    total = sum(_SCALE_WEIGHTS)
    for s in range(nscale):
        for o in range(norient):
            angle = o * math.pi / norient
            ds = sin_t * math.cos(angle) - cos_t * math.sin(angle)
            dc = cos_t * math.cos(angle) + sin_t * math.sin(angle)
            spread = np.exp(-np.arctan2(ds, dc) ** 2 / (2.0 * theta_sigma ** 2))
            filters.append(np.fft.fftshift(radial[s] * spread))
            weights.append(_SCALE_WEIGHTS[s] / total)
    return np.stack(filters).astype(np.float32), np.asarray(weights, np.float32)


@functools.lru_cache(maxsize=32)
def _kept_weights(side: int) -> np.ndarray:
    """Per block (16 x 16 at stride 4, written to the 4 x 4 pixels at its corner): how many of its pixels lie
    in the kept rows ``16 .. side - 18`` (MATLAB ``BSIZE+1:end-BSIZE-1``)."""
    blocks = (side - 16) // 4 + 1
    rows = np.arange(_EDGE, side - _EDGE - 1)
    return np.bincount(rows // 4, minlength=blocks)[:blocks].astype(np.float32)


# ------------------------------------------------------------------------------------------ block moments

def _block_moments(x: jax.Array, blocks_h: int, blocks_w: int, cells: int, orders: int):
    """Mean and central sums (orders 2..``orders``) of the (4 * cells)^2 blocks starting every 4 pixels.

    ``x`` is B x H x W; returns B x blocks_h x blocks_w arrays. Each block is ``cells x cells`` cells of
    4 x 4 pixels: the cells' own central sums are computed once and combined exactly (the parallel-axis
    formulas, ``delta`` = cell mean - block mean), which keeps float32 free of the cancellation of raw
    power sums and touches every pixel once."""
    b = x.shape[0]
    nh, nw = blocks_h + cells - 1, blocks_w + cells - 1
    grid = x[:, : 4 * nh, : 4 * nw].reshape(b, nh, 4, nw, 4)
    cell_mean = jnp.mean(grid, axis=(2, 4))
    shifted = [cell_mean[:, i:i + blocks_h, j:j + blocks_w] for i in range(cells) for j in range(cells)]
    mean = sum(shifted) / float(cells * cells)
    if orders < 2:
        return mean, []
    d = grid - cell_mean[:, :, None, :, None]
    d2 = d * d
    cell_sums = [jnp.sum(d2, axis=(2, 4))]
    if orders >= 3:
        cell_sums.append(jnp.sum(d2 * d, axis=(2, 4)))
    if orders >= 4:
        cell_sums.append(jnp.sum(d2 * d2, axis=(2, 4)))
    sums = [0.0] * (orders - 1)
    k = 0
    for i in range(cells):
        for j in range(cells):
            delta = shifted[k] - mean
            k += 1
            c = [a[:, i:i + blocks_h, j:j + blocks_w] for a in cell_sums]
            sums[0] = sums[0] + c[0] + 16.0 * delta * delta
            if orders >= 3:
                sums[1] = sums[1] + c[1] + delta * (3.0 * c[0] + 16.0 * delta * delta)
            if orders >= 4:
                sums[2] = sums[2] + c[2] + delta * (4.0 * c[1] + delta * (6.0 * c[0] + 16.0 * delta * delta))
    return mean, sums


def _neighbour_ok(side: int, blocks: int) -> np.ndarray:
    # ical_std's test ``iB < side - 15`` for iB = start + 5: the next 8 x 8 block (4 pixels on) counts.
    return 4 * np.arange(blocks) + 5 < side - 15


# ------------------------------------------------------------------------------------------------ stages

def _d_detect(ref: jax.Array, dst: jax.Array) -> jax.Array:
    """hi_index on B x H x W grey images in 0..255."""
    _, h, w = ref.shape
    bh, bw = (h - 16) // 4 + 1, (w - 16) // 4 + 1
    csf = jnp.asarray(_csf_filter(h, w))

    def perceived(g):
        lum = _K * safe_power(g, 2.2 / 3.0)
        return jnp.fft.irfft2(jnp.fft.rfft2(lum) * csf, s=(h, w))

    ref_l, dst_l = perceived(ref), perceived(dst)
    mean_ref, _ = _block_moments(ref_l, bh, bw, 4, 1)
    _, (m2_err,) = _block_moments(dst_l - ref_l, bh, bw, 4, 2)
    var_err = m2_err / 255.0
    _, (m2_8,) = _block_moments(ref_l, bh + 1, bw + 1, 2, 2)
    var8 = m2_8 / 63.0
    own = var8[:, :bh, :bw]
    ok_h = jnp.asarray(_neighbour_ok(h, bh))[None, :, None]
    ok_w = jnp.asarray(_neighbour_ok(w, bw))[None, None, :]
    var_mod = own
    for (di, dj), ok in (((1, 0), ok_h), ((0, 1), ok_w), ((1, 1), ok_h & ok_w)):
        var_mod = jnp.minimum(var_mod, jnp.where(ok, var8[:, di:di + bh, dj:dj + bw], own))
    # Masking: ln(sd_err / m) - max(ln(sd_mod / m), -5), kept where positive, on blocks with m >= G.
    floor = jnp.square(mean_ref * math.exp(_CD))
    threshold = jnp.maximum(var_mod, floor)
    masked = (mean_ref >= _G) & (var_err > threshold)
    safe_err = jnp.where(masked, var_err, 1.0)
    safe_thr = jnp.where(masked, threshold, 1.0)
    mask = jnp.where(masked, 0.5 * (jnp.log(safe_err) - jnp.log(safe_thr)), 0.0)
    # Local MSE (0..255 grey) over rows r - 7 .. r + 8 for the kept rows 16 .. h - 18.
    err2 = jnp.square(ref - dst)[:, _EDGE - 7: h - _EDGE + 7, _EDGE - 7: w - _EDGE + 7]
    box = (1.0 / 16.0,) * 16
    lmse = correlate1d(correlate1d(err2, box, axis=1), box, axis=2)
    mask_px = jnp.repeat(jnp.repeat(mask, 4, axis=1), 4, axis=2)[:, _EDGE: h - _EDGE - 1, _EDGE: w - _EDGE - 1]
    return 200.0 * safe_sqrt(jnp.mean(jnp.square(mask_px * lmse), axis=(1, 2)))


def _block_shape_stats(mag: jax.Array, bh: int, bw: int):
    _, (m2, m3, m4) = _block_moments(mag, bh, bw, 4, 4)
    std = safe_sqrt(m2 / 255.0)
    var0 = m2 / 256.0
    flat = var0 <= FLAT_STD ** 2
    v = jnp.where(flat, 1.0, var0)
    skew = jnp.where(flat, 0.0, (m3 / 256.0) / (v * jnp.sqrt(v)))
    kurt = jnp.where(flat, 0.0, (m4 / 256.0) / (v * v))
    return std, skew, kurt


def _d_appear(ref: jax.Array, dst: jax.Array) -> jax.Array:
    """lo_index on B x H x W grey images in 0..255."""
    b, h, w = ref.shape
    bh, bw = (h - 16) // 4 + 1, (w - 16) // 4 + 1
    filters, weights = _log_gabor_bank(h, w)
    # The batch axis stays first (ref and dst side by side along it): XLA:CPU's FFT needs its operand in the
    # default layout, which a new leading axis over a batch sharded across devices does not keep.
    spectra = jnp.fft.fft2(jnp.concatenate([ref, dst], axis=0).astype(jnp.complex64))  # 2B x H x W
    responses = jnp.fft.ifft2(spectra[:, None] * jnp.asarray(filters))  # 2B x 20 x H x W
    mag = safe_sqrt(jnp.square(responses.real) + jnp.square(responses.imag))
    std, skew, kurt = _block_shape_stats(mag.reshape(2 * b * 20, h, w), bh, bw)
    std, skew, kurt = (a.reshape(2, b, 20, bh, bw) for a in (std, skew, kurt))
    diff = jnp.abs(std[0] - std[1]) + 2.0 * jnp.abs(skew[0] - skew[1]) + jnp.abs(kurt[0] - kurt[1])
    stat_map = jnp.einsum("bfij,f->bij", diff, jnp.asarray(weights), precision=jax.lax.Precision.HIGHEST)
    wr, wc = _kept_weights(h), _kept_weights(w)
    count = float(wr.sum() * wc.sum())
    pixel_weights = jnp.asarray(np.outer(wr, wc) / count)
    return safe_sqrt(jnp.sum(jnp.square(stat_map) * pixel_weights, axis=(1, 2)))


def _grey255(x: jax.Array, colour: str) -> jax.Array:
    if x.shape[-1] == 3:
        if colour == "gray":
            x = rgb_to_gray(x, quantize=False)
        elif colour == "luma":
            x = rgb_to_luma(x)
        else:
            raise InputError(f"mad: colour must be 'gray' or 'luma', got {colour!r}")
    return 255.0 * x[..., 0]


def _stages(x, y, colour):
    x, y = check_pair("mad", x, y, channels=(1, 3), min_size=MIN_SIZE)
    dst, ref = _grey255(x, colour), _grey255(y, colour)
    return _d_detect(ref, dst), _d_appear(ref, dst)


@functools.partial(jax.jit, static_argnames=("colour",))
def mad_stages(x: jax.Array, y: jax.Array, *, colour: str = "gray") -> tuple[jax.Array, jax.Array]:
    """``(d_detect, d_appear)`` per image (``index.HI`` and ``index.LO`` of ``MAD_index.m``)."""
    return _stages(x, y, colour)


@functools.partial(jax.jit, static_argnames=("colour", "thresholds"))
def mad(x: jax.Array, y: jax.Array, *, colour: str = "gray",
        thresholds: tuple[float, float] = (2.55, 3.35)) -> jax.Array:
    """MAD per image (lower is better, 0 for identical images); x distorted, y reference, NHWC RGB or grey
    in [0, 1], at least 34 x 34.

    ``colour``: ``"gray"`` (MATLAB rgb2gray weights, the authors' code) or ``"luma"`` (BT.601).
    ``thresholds``: the blend's ``(thresh1, thresh2)``: ``b1 = exp(-t1 / t2)``, ``b2 = 1 / (ln 10 * t2)``.

    Gradients where the model is not differentiable: the masking map's threshold (``max(0, .)``, the
    ``mean >= G`` test, the minimum over the 8 x 8 deviations and the max with ``mean * e^-5``) passes the
    gradient of the branch taken (none where the map is 0; ties split); ``|.|`` of a zero statistic
    difference and the square roots of zero (local deviation, the log-Gabor magnitude, the root mean squares
    at identical images) have gradient 0; flat log-Gabor blocks (deviation <= ``FLAT_STD``) have skewness
    and kurtosis 0 with gradient 0; the power ``grey ** (2.2 / 3)`` has gradient 0 at grey level 0. The blend
    is 0 with gradient 0 where d_detect or d_appear is 0 (``d_detect ** alpha`` at 0, where alpha = 1).
    """
    t1, t2 = thresholds
    b1, b2 = math.exp(-t1 / t2), 1.0 / (math.log(10.0) * t2)
    detect, appear = _stages(x, y, colour)
    alpha = 1.0 / (1.0 + b1 * safe_power(detect, b2))
    positive = (detect > 0) & (appear > 0)
    log_detect = jnp.log(jnp.where(positive, detect, 1.0))
    log_appear = jnp.log(jnp.where(positive, appear, 1.0))
    return jnp.where(positive, jnp.exp(alpha * log_detect + (1.0 - alpha) * log_appear), 0.0)
