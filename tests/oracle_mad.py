"""Float64 numpy transcription of Larson and Chandler's ``MAD_index.m`` (2011 release) and its MEX helpers
``ical_std.c`` and ``ical_stat.c``, used as the test oracle for :mod:`asym_jax.metrics.apparent`.

It follows the MATLAB code's structure rather than the JAX module's: full-size maps in which every
16 x 16 block (stride 4) writes its statistics to the 4 x 4 pixels at its corner (the rest stays 0), MATLAB's
``log`` with -inf, the ``idx1`` / ``idx2`` masking branches, ``imfilter(..., 'symmetric', 'same', 'conv')``
for the local MSE, the ``BSIZE+1:end-BSIZE-1`` border cut and ``norm(.) / sqrt(numel)``. Inputs are grey
images on the 0..255 scale (float64, not rounded). ``flat_std`` is the JAX module's documented flat-block
threshold (0 gives the MEX code's exact-zero test).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

BSIZE = 16


def _windows(x, size):
    """Blocks of ``size`` x ``size`` starting every 4 pixels while start < side - 15 (the MEX loops)."""
    rows, cols = x.shape
    n_r = len(range(0, rows - 15, 4))
    n_c = len(range(0, cols - 15, 4))
    return sliding_window_view(x, (size, size))[0:4 * n_r:4, 0:4 * n_c:4]


def _to_pixels(block_values, shape):
    """Writes each block's value to the 4 x 4 pixels at its corner; 0 elsewhere."""
    out = np.zeros(shape)
    n_r, n_c = block_values.shape
    out[:4 * n_r, :4 * n_c] = np.repeat(np.repeat(block_values, 4, 0), 4, 1)
    return out


def ical_std(x, y):
    """[std of x (16 x 16, N-1), modified std of y, mean of y (16 x 16)] as full-size maps."""
    shape = x.shape
    wx, wy = _windows(x, 16), _windows(y, 16)
    std = _to_pixels(np.std(wx, axis=(2, 3), ddof=1), shape)
    mean = _to_pixels(np.mean(wy, axis=(2, 3)), shape)
    tmp = _to_pixels(np.std(_windows(y, 8), axis=(2, 3), ddof=1), shape)
    rows, cols = shape
    # The MEX loop over block corners (i, j): the minimum of TMP at (i, j), (i, j+5), (i+5, j), (i+5, j+5),
    # each neighbour only where its index passes ``< side - 15``; vectorised over the corners.
    i = np.arange(0, rows - 15, 4)[:, None]
    j = np.arange(0, cols - 15, 4)[None, :]
    value = tmp[i, j]
    for ib, jb in ((i, j + 5), (i + 5, j), (i + 5, j + 5)):
        ok = (ib < rows - 15) & (jb < cols - 15)
        neighbour = tmp[np.minimum(ib, rows - 1), np.minimum(jb, cols - 1)]
        value = np.where(ok & (value > neighbour), neighbour, value)
    mod = _to_pixels(value, shape)
    return std, mod, mean


def ical_stat(x, flat_std=0.0):
    """[std (N-1), skewness, kurtosis] of the 16 x 16 blocks, full-size maps."""
    w = _windows(x, 16)
    mean = w.mean(axis=(2, 3), keepdims=True)
    d = w - mean
    m2 = np.sum(d ** 2, axis=(2, 3))
    stmp = np.sqrt(m2 / 256.0)
    std = np.sqrt(m2 / 255.0)
    flat = stmp <= flat_std
    with np.errstate(divide="ignore", invalid="ignore"):
        skw = np.where(flat, 0.0, np.sum(d ** 3, axis=(2, 3)) / 256.0 / stmp ** 3)
        krt = np.where(flat, 0.0, np.sum(d ** 4, axis=(2, 3)) / 256.0 / stmp ** 4)
    return tuple(_to_pixels(a, x.shape) for a in (std, skw, krt))


def make_csf(x, y, nfreq):
    xplane, yplane = np.meshgrid(np.arange(-x / 2 + 0.5, x / 2 - 0.5 + 0.5), np.arange(-y / 2 + 0.5, y / 2 - 0.5 + 0.5))
    plane = (xplane + 1j * yplane) / y * 2 * nfreq
    radfreq = np.abs(plane)
    w = 0.7
    s = (1 - w) / 2 * np.cos(4 * np.angle(plane)) + (1 + w) / 2
    radfreq = radfreq / s
    csf = 2.6 * (0.0192 + 0.114 * radfreq) * np.exp(-(0.114 * radfreq) ** 1.1)
    csf[radfreq < 7.8909] = 0.9809
    return csf


def matlab_round(v):
    return math.floor(v + 0.5)


def gaborconvolve(im):
    nscale, norient, min_wave, mult, sigma_on_f, d_theta_on_sigma = 5, 4, 3, 3, 0.55, 1.5
    wavelength = [min_wave * mult ** k for k in range(nscale)]
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    x = np.ones((rows, 1)) * np.arange(-cols / 2, cols / 2 - 1 + 0.5)[None, :] / (cols / 2)
    y = np.arange(-rows / 2, rows / 2 - 1 + 0.5)[:, None] * np.ones((1, cols)) / (rows / 2)
    radius = np.sqrt(x ** 2 + y ** 2)
    r0, c0 = matlab_round(rows / 2 + 1) - 1, matlab_round(cols / 2 + 1) - 1
    radius[r0, c0] = 1
    radius = np.log(radius)
    theta = np.arctan2(-y, x)
    sintheta, costheta = np.sin(theta), np.cos(theta)
    theta_sigma = np.pi / norient / d_theta_on_sigma
    log_gabors = []
    for s in range(nscale):
        rfo = (1.0 / wavelength[s]) / 0.5
        g = np.exp((radius - np.log(rfo)) ** 2 / -(2 * np.log(sigma_on_f) ** 2))
        g[r0, c0] = 0
        log_gabors.append(g)
    eo = [[None] * norient for _ in range(nscale)]
    for o in range(norient):
        angl = o * np.pi / norient
        ds = sintheta * np.cos(angl) - costheta * np.sin(angl)
        dc = costheta * np.cos(angl) + sintheta * np.sin(angl)
        dtheta = np.abs(np.arctan2(ds, dc))
        spread = np.exp(-dtheta ** 2 / (2 * theta_sigma ** 2))
        for s in range(nscale):
            eo[s][o] = np.fft.ifft2(imagefft * np.fft.fftshift(log_gabors[s] * spread))
    return eo


def hi_index(ref_img, dst_img):
    k, g_thr, c_slope, ci_thrsh, cd_thrsh, ms_scale = 0.02874, 0.5, 1, -5, -5, 1
    ref = k * ref_img ** (2.2 / 3)
    dst = k * dst_img ** (2.2 / 3)
    m, n = ref.shape
    csf = make_csf(m, n, 32).T
    ref = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(ref)) * csf)))
    dst = np.real(np.fft.ifft2(np.fft.ifftshift(np.fft.fftshift(np.fft.fft2(dst)) * csf)))
    std_2, std_1, m1_1 = ical_std(dst - ref, ref)
    # Where m1_1 < G (including the uncovered border, 0 / 0, and any negative mean) ci_dst is -inf and
    # neither branch applies, so the NaN numpy gives there for MATLAB's complex logs changes nothing.
    with np.errstate(divide="ignore", invalid="ignore"):
        ci_ref = np.log(std_1 / m1_1)
        ci_dst = np.log(std_2 / m1_1)
    ci_dst[m1_1 < g_thr] = -np.inf
    msk = np.zeros(ci_dst.shape)
    with np.errstate(invalid="ignore"):
        idx1 = (ci_ref > ci_thrsh) & (ci_dst > (c_slope * (ci_ref - ci_thrsh) + cd_thrsh))
        idx2 = (ci_ref <= ci_thrsh) & (ci_dst > cd_thrsh)
    msk[idx1] = (ci_dst[idx1] - (c_slope * (ci_ref[idx1] - ci_thrsh) + cd_thrsh)) / ms_scale
    msk[idx2] = (ci_dst[idx2] - cd_thrsh) / ms_scale
    # imfilter(e, ones(16)/256, 'symmetric', 'same', 'conv'): output r averages rows r-7 .. r+8.
    e = (ref_img - dst_img) ** 2
    padded = np.pad(e, ((7, 8), (7, 8)), mode="symmetric")
    lmse = sliding_window_view(padded, (BSIZE, BSIZE)).mean(axis=(2, 3))
    mp = msk * lmse
    mp2 = mp[BSIZE:m - BSIZE - 1, BSIZE:n - BSIZE - 1]
    return np.linalg.norm(mp2.ravel()) / np.sqrt(mp2.size) * 200


def lo_index(ref, dst, flat_std=0.0):
    gab_ref, gab_dst = gaborconvolve(ref), gaborconvolve(dst)
    s = np.array([0.5, 0.75, 1, 5, 6])
    s = s / s.sum()
    mp = np.zeros(ref.shape)
    for i in range(5):
        for j in range(4):
            std_r, skw_r, krt_r = ical_stat(np.abs(gab_ref[i][j]), flat_std)
            std_d, skw_d, krt_d = ical_stat(np.abs(gab_dst[i][j]), flat_std)
            mp = mp + s[i] * (np.abs(std_r - std_d) + 2 * np.abs(skw_r - skw_d) + np.abs(krt_r - krt_d))
    m, n = ref.shape
    mp2 = mp[BSIZE:m - BSIZE - 1, BSIZE:n - BSIZE - 1]
    return np.linalg.norm(mp2.ravel()) / np.sqrt(mp2.size)


def mad_index(ref, dst, flat_std=0.0, thresh=(2.55, 3.35)):
    """``(MAD, HI, LO)`` for grey float64 images on the 0..255 scale."""
    hi = hi_index(ref, dst)
    lo = lo_index(ref, dst, flat_std)
    b1 = np.exp(-thresh[0] / thresh[1])
    b2 = 1 / (np.log(10) * thresh[1])
    sig = 1 / (1 + b1 * hi ** b2)
    return lo ** (1 - sig) * hi ** sig, hi, lo


def rgb2gray_unrounded(rgb01):
    """MATLAB rgb2gray weights on a [0, 1] RGB image, unrounded, on the 0..255 scale."""
    coeffs = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return np.asarray(rgb01, np.float64) @ coeffs * 255.0
