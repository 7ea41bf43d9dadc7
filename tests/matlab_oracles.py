"""Float64 numpy transcriptions of the authors' MATLAB reference code, used as test oracles.

They follow the published MATLAB scripts step by step (``rgb2gray`` on uint8, ``filter2(..., 'valid')``,
``imfilter(..., 'symmetric', 'same')``, ``conv2(..., 'same')``, ``std2``), in double precision.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

MS_WEIGHTS = np.array([0.0448, 0.2856, 0.3001, 0.2363, 0.1333])


def matlab_round(x):
    return np.floor(np.asarray(x, np.float64) + 0.5)


def rgb2gray_uint8(rgb01: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray on the uint8 image (result rounded to uint8), as float64 0..255."""
    rgb8 = matlab_round(np.clip(rgb01, 0, 1) * 255.0)
    coeffs = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    return matlab_round(rgb8 @ coeffs)


def fspecial_gaussian(size=11, sigma=1.5):
    ax = np.arange(size) - (size - 1) / 2
    xx, yy = np.meshgrid(ax, ax)
    g = np.exp(-(xx ** 2 + yy ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_index_maps(img1, img2, L=255.0, K=(0.01, 0.03), window=None):
    """ssim_index.m: returns (ssim_map, cs_map) with 'valid' filtering."""
    window = fspecial_gaussian() if window is None else window
    C1, C2 = (K[0] * L) ** 2, (K[1] * L) ** 2

    def filt(a):
        return signal.correlate2d(a, window, mode="valid")

    mu1, mu2 = filt(img1), filt(img2)
    s11 = filt(img1 * img1) - mu1 * mu1
    s22 = filt(img2 * img2) - mu2 * mu2
    s12 = filt(img1 * img2) - mu1 * mu2
    cs = (2 * s12 + C2) / (s11 + s22 + C2)
    return ((2 * mu1 * mu2 + C1) / (mu1 ** 2 + mu2 ** 2 + C1)) * cs, cs


def imfilter_box_symmetric_subsample(img, f):
    """imfilter(img, ones(f)/f^2, 'symmetric', 'same') then img(1:f:end, 1:f:end)."""
    c = (f + 1) // 2  # MATLAB kernel centre (1-based)
    padded = np.pad(img, ((c - 1, f - c), (c - 1, f - c)), mode="symmetric")
    out = signal.correlate2d(padded, np.ones((f, f)) / f ** 2, mode="valid")
    return out[::f, ::f]


def ssim_2009(img1, img2):
    """ssim.m (2009) with automatic downsampling, on 0..255 grey images."""
    f = max(1, int(matlab_round(min(img1.shape) / 256)))
    if f > 1:
        img1, img2 = imfilter_box_symmetric_subsample(img1, f), imfilter_box_symmetric_subsample(img2, f)
    return ssim_index_maps(img1, img2)[0].mean()


def msssim(img1, img2, levels=5, weights=MS_WEIGHTS):
    """msssim.m (product method) on 0..255 grey images."""
    mssim, mcs = [], []
    for level in range(levels):
        s_map, cs_map = ssim_index_maps(img1, img2)
        mssim.append(s_map.mean())
        mcs.append(cs_map.mean())
        if level < levels - 1:
            img1 = imfilter_box_symmetric_subsample(img1, 2)
            img2 = imfilter_box_symmetric_subsample(img2, 2)
    weights = weights[:levels] if levels == len(weights) else weights[:levels] / weights[:levels].sum()
    return np.prod(np.array(mcs[:-1]) ** weights[:-1]) * mssim[-1] ** weights[-1]


def gmsd(rgb1, rgb2):
    """GMSD.m on Y = 0.299 R + 0.587 G + 0.114 B of the 0..255 image."""
    coeffs = np.array([0.299, 0.587, 0.114])
    y1, y2 = (np.asarray(a, np.float64) * 255.0 @ coeffs for a in (rgb1, rgb2))
    T = 170.0
    dx = np.array([[1, 0, -1]] * 3) / 3.0
    dy = dx.T

    def conv2_same(a, k):
        return signal.convolve2d(a, k, mode="same")

    def halve(a):
        # conv2(Y, ones(2)/4, 'same') then Y(1:2:end, 1:2:end); MATLAB's 'same' keeps rows 2.. of 'full'.
        full = signal.convolve2d(a, np.ones((2, 2)) / 4.0, mode="full")
        same = full[1:1 + a.shape[0], 1:1 + a.shape[1]]
        return same[::2, ::2]

    a1, a2 = halve(y1), halve(y2)
    g1 = np.sqrt(conv2_same(a1, dx) ** 2 + conv2_same(a1, dy) ** 2)
    g2 = np.sqrt(conv2_same(a2, dx) ** 2 + conv2_same(a2, dy) ** 2)
    quality = (2 * g1 * g2 + T) / (g1 ** 2 + g2 ** 2 + T)
    return np.std(quality, ddof=1)


def bt601_y_limited(rgb01):
    """MATLAB rgb2ycbcr Y of a [0, 1] image, on the 0..255 scale, unrounded (BasicSR)."""
    return 16.0 + np.asarray(rgb01, np.float64) @ np.array([65.481, 128.553, 24.966])


