"""Float64 numpy transcription of the authors' VSI reference (Lin Zhang's ``VSI.m``, with its ``SDSP``,
``RGB2Lab`` and ``logGabor`` subfunctions), step by step, for one pair of H x W x 3 images on the
0..255 scale (as ``double(image)`` of the uint8 images MATLAB reads; nothing is rounded here).

MATLAB built-ins are written out: ``imresize(..., [r c], 'bilinear')`` (the ``contributions`` of
``imresize.m``: triangle kernel, antialiasing when shrinking, mirrored indices, applied one dimension after
the other, the one with the smaller scale first), ``conv2(..., 'same')`` (central part of the full
convolution, starting at ``floor(size(kernel) / 2) + 1``), ``mat2gray`` (min-max scaling) and ``round``.
Written independently of ``asym_jax.metrics.saliency`` (gathers and loops, not dense matrices).
"""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import signal


def _contributions(in_length: int, out_length: int, scale: float):
    """imresize.m's contributions for the triangle kernel: (weights, 0-based indices), out x P."""
    kernel_width = 2.0
    antialias = scale < 1
    if antialias:
        kernel_width = kernel_width / scale
    x = np.arange(1, out_length + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - kernel_width / 2)
    p = int(math.ceil(kernel_width)) + 2
    indices = left[:, None] + np.arange(p)[None, :]
    dist = u[:, None] - indices
    if antialias:
        t = scale * dist
        weights = scale * ((1 + t) * ((-1 <= t) & (t < 0)) + (1 - t) * ((0 <= t) & (t <= 1)))
    else:
        t = dist
        weights = (1 + t) * ((-1 <= t) & (t < 0)) + (1 - t) * ((0 <= t) & (t <= 1))
    weights = weights / weights.sum(axis=1, keepdims=True)
    aux = np.concatenate([np.arange(1, in_length + 1), np.arange(in_length, 0, -1)])
    indices = aux[np.mod(indices.astype(np.int64) - 1, len(aux))] - 1
    return weights, indices


def _resize_dim(a: np.ndarray, out_length: int, dim: int) -> np.ndarray:
    in_length = a.shape[dim]
    weights, indices = _contributions(in_length, out_length, out_length / in_length)
    a = np.moveaxis(a, dim, 0)
    out = np.zeros((out_length,) + a.shape[1:])
    for k in range(weights.shape[1]):
        out += weights[:, k].reshape((-1,) + (1,) * (a.ndim - 1)) * a[indices[:, k]]
    return np.moveaxis(out, 0, dim)


def imresize_bilinear(a: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """MATLAB ``imresize(a, [rows cols], 'bilinear')`` of a double 2-D array."""
    scale = (rows / a.shape[0], cols / a.shape[1])
    order = (0, 1) if scale[0] <= scale[1] else (1, 0)
    for dim in order:
        a = _resize_dim(a, (rows, cols)[dim], dim)
    return a


def conv2_same(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    full = signal.convolve2d(a, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]]


def mat2gray(a: np.ndarray) -> np.ndarray:
    return (a - a.min()) / (a.max() - a.min())


def rgb2lab(image: np.ndarray) -> np.ndarray:
    """SDSP's RGB2Lab (sRGB gamma, sRGB/D65 matrix, white 0.9642 / 1 / 0.8251) of a 0..255 image."""
    rgb = image / 255.0
    lin = np.empty_like(rgb)
    for c in range(3):
        v = rgb[..., c]
        small = v <= 0.04045
        lin[..., c] = (v / 12.92) * small + np.power((v + 0.055) / 1.055, 2.4) * (1 - small)
    r, g, b = lin[..., 0], lin[..., 1], lin[..., 2]
    xyz = [r * 0.4124564 + g * 0.3575761 + b * 0.1804375,
           r * 0.2126729 + g * 0.7151522 + b * 0.0721750,
           r * 0.0193339 + g * 0.1191920 + b * 0.9503041]
    white = (0.9642, 1.0, 0.8251)
    f = []
    for v, w in zip(xyz, white):
        t = v / w
        above = t > 0.008856
        f.append(np.power(np.abs(t), 1.0 / 3.0) * above + (903.3 * t + 16.0) / 116.0 * (1 - above))
    return np.stack([116.0 * f[1] - 16.0, 500.0 * (f[0] - f[1]), 200.0 * (f[1] - f[2])], axis=-1)


@functools.lru_cache(maxsize=4)  # a pure function of its arguments: computed once
def log_gabor(rows: int, cols: int, omega0: float, sigma_f: float) -> np.ndarray:
    u1, u2 = np.meshgrid((np.arange(1, cols + 1) - (cols // 2 + 1)) / (cols - cols % 2),
                         (np.arange(1, rows + 1) - (rows // 2 + 1)) / (rows - rows % 2))
    mask = np.ones((rows, cols))
    for i in range(rows):
        for j in range(cols):
            if u1[i, j] ** 2 + u2[i, j] ** 2 > 0.25:
                mask[i, j] = 0
    u1, u2 = np.fft.ifftshift(u1 * mask), np.fft.ifftshift(u2 * mask)
    radius = np.sqrt(u1 ** 2 + u2 ** 2)
    radius[0, 0] = 1
    with np.errstate(divide="ignore"):
        lg = np.exp(-(np.log(radius / omega0)) ** 2 / (2 * sigma_f ** 2))
    lg[0, 0] = 0
    lg.flags.writeable = False
    return lg


def sdsp(image: np.ndarray, sigma_f=1.34, omega0=0.021, sigma_d=145.0, sigma_c=0.001) -> np.ndarray:
    ori_rows, ori_cols = image.shape[:2]
    ds = np.stack([imresize_bilinear(image[..., c], 256, 256) for c in range(3)], axis=-1)
    lab = rgb2lab(ds)
    rows, cols = 256, 256
    lg = log_gabor(rows, cols, omega0, sigma_f)
    results = [np.real(np.fft.ifft2(np.fft.fft2(lab[..., c]) * lg)) for c in range(3)]
    sf_map = np.sqrt(results[0] ** 2 + results[1] ** 2 + results[2] ** 2)
    yy, xx = np.meshgrid(np.arange(1, rows + 1), np.arange(1, cols + 1), indexing="ij")
    sd_map = np.exp(-((yy - rows / 2) ** 2 + (xx - cols / 2) ** 2) / sigma_d ** 2)
    a, b = lab[..., 1], lab[..., 2]
    na = (a - a.min()) / (a.max() - a.min())
    nb = (b - b.min()) / (b.max() - b.min())
    sc_map = 1 - np.exp(-(na ** 2 + nb ** 2) / sigma_c ** 2)
    vs = imresize_bilinear(sf_map * sd_map * sc_map, ori_rows, ori_cols)
    return mat2gray(vs)


def vsi(image1: np.ndarray, image2: np.ndarray) -> float:
    """VSI.m of two H x W x 3 double images on the 0..255 scale."""
    c_vs, c_gm, c_chrom, alpha, lam = 1.27, 386.0, 130.0, 0.40, 0.020
    sm1, sm2 = sdsp(image1), sdsp(image2)
    rows, cols = image1.shape[:2]

    def lmn(im):
        r, g, b = im[..., 0], im[..., 1], im[..., 2]
        return (0.06 * r + 0.63 * g + 0.27 * b, 0.30 * r + 0.04 * g - 0.35 * b, 0.34 * r - 0.60 * g + 0.17 * b)

    (l1, m1, n1), (l2, m2, n2) = lmn(image1), lmn(image2)
    f = max(1, int(math.floor(min(rows, cols) / 256 + 0.5)))
    kernel = np.ones((f, f)) / f ** 2

    def down(a):
        return conv2_same(a, kernel)[0:rows:f, 0:cols:f]

    m1, m2, n1, n2, l1, l2, sm1, sm2 = map(down, (m1, m2, n1, n2, l1, l2, sm1, sm2))
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16
    dy = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]) / 16
    gm1 = np.sqrt(conv2_same(l1, dx) ** 2 + conv2_same(l1, dy) ** 2)
    gm2 = np.sqrt(conv2_same(l2, dx) ** 2 + conv2_same(l2, dy) ** 2)
    vs_sim = (2 * sm1 * sm2 + c_vs) / (sm1 ** 2 + sm2 ** 2 + c_vs)
    gm_sim = (2 * gm1 * gm2 + c_gm) / (gm1 ** 2 + gm2 ** 2 + c_gm)
    weight = np.maximum(sm1, sm2)
    i_sim = (2 * m1 * m2 + c_chrom) / (m1 ** 2 + m2 ** 2 + c_chrom)
    q_sim = (2 * n1 * n2 + c_chrom) / (n1 ** 2 + n2 ** 2 + c_chrom)
    chrom = np.real(np.power((i_sim * q_sim).astype(np.complex128), lam))
    sim = gm_sim ** alpha * vs_sim * chrom * weight
    return float(sim.sum() / weight.sum())
