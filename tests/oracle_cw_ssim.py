"""A float64 numpy transcription of CW-SSIM as published by Sampat, Wang, Gupta, Bovik and Markey (2009):
the authors' ``cwssim_index.m`` (CW-SSIM Index 1.0) on top of matlabPyrTools' ``buildSCFpyr.m``,
``buildSCFpyrLevs.m``, ``rcosFn.m``, ``pointOp`` (MEX: linear interpolation, end segments extended),
``pyrBand.m`` and MATLAB's ``filter2(..., 'valid')`` and ``fspecial('gaussian')``.

Written independently of ``asym_jax.metrics.steerable``: the pyramid is built level by level as
buildSCFpyr does (an inverse FFT per band, the spectrum cropped and masked per level), the whole
pyramid is stored as one vector with its index table, and the radial table keeps its floating-point
floor (about 6e-17) as MATLAB computes it.
"""

from __future__ import annotations

import math

import numpy as np

RGB2GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)


def point_op(image, lut, origin, increment):
    """pointOp.c: ``pos = (v - origin) / increment``, index clamped to [0, len - 2], linear in between."""
    pos = (np.asarray(image, np.float64) - origin) / increment
    index = np.floor(pos).astype(np.int64)
    index = np.minimum(np.maximum(index, 0), len(lut) - 2)
    return lut[index] + (lut[index + 1] - lut[index]) * (pos - index)


def rcos_fn(width, position, values):
    sz = 256
    x = np.pi * np.arange(-sz - 1, 2) / (2 * sz)
    y = values[0] + (values[1] - values[0]) * np.cos(x) ** 2
    y[0] = y[1]
    y[sz + 2] = y[sz + 1]
    x = position + (2 * width / np.pi) * (x + np.pi / 4)
    return x, y


def _levels(lodft, log_rad, xrcos, yrcos, angle, ht, nbands):
    if ht <= 0:
        lo0 = np.fft.ifft2(np.fft.ifftshift(lodft))
        return [np.real(lo0).ravel(order="F")], [lo0.shape]
    pyr, pind = [], []
    xrcos = xrcos - 1.0
    lutsize = 1024
    xcosn = np.pi * np.arange(-(2 * lutsize + 1), lutsize + 2) / lutsize
    order = nbands - 1
    const = (2 ** (2 * order)) * (math.factorial(order) ** 2) / (nbands * math.factorial(2 * order))
    alfa = np.mod(np.pi + xcosn, 2 * np.pi) - np.pi
    ycosn = 2 * np.sqrt(const) * (np.cos(xcosn) ** order) * (np.abs(alfa) < np.pi / 2)
    himask = point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    for b in range(1, nbands + 1):
        anglemask = point_op(angle, ycosn, xcosn[0] + np.pi * (b - 1) / nbands, xcosn[1] - xcosn[0])
        banddft = ((-1j) ** (nbands - 1)) * lodft * anglemask * himask
        band = np.fft.ifft2(np.fft.ifftshift(banddft))
        pyr.append(band.ravel(order="F"))
        pind.append(band.shape)
    dims = np.array(lodft.shape)
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    lodims = np.ceil((dims - 0.5) / 2).astype(int)
    loctr = np.ceil((lodims + 0.5) / 2).astype(int)
    lostart = ctr - loctr + 1
    loend = lostart + lodims - 1
    rows, cols = slice(lostart[0] - 1, loend[0]), slice(lostart[1] - 1, loend[1])
    log_rad, angle, lodft = log_rad[rows, cols], angle[rows, cols], lodft[rows, cols]
    yircos = np.abs(np.sqrt(1.0 - yrcos ** 2))
    lomask = point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])
    npyr, nind = _levels(lomask * lodft, log_rad, xrcos, yrcos, angle, ht - 1, nbands)
    return pyr + npyr, pind + nind


def build_scf_pyr(im, ht, order, twidth=1.0):
    """buildSCFpyr: returns (pyr as one complex vector, pind as a list of band shapes)."""
    im = np.asarray(im, np.float64)
    max_ht = int(np.floor(np.log2(min(im.shape)))) - 2
    assert ht <= max_ht, f"Cannot build pyramid higher than {max_ht} levels."
    nbands = order + 1
    dims = np.array(im.shape)
    ctr = np.ceil((dims + 0.5) / 2).astype(int)
    xramp, yramp = np.meshgrid((np.arange(1, dims[1] + 1) - ctr[1]) / (dims[1] / 2),
                               (np.arange(1, dims[0] + 1) - ctr[0]) / (dims[0] / 2))
    angle = np.arctan2(yramp, xramp)
    log_rad = np.sqrt(xramp ** 2 + yramp ** 2)
    log_rad[ctr[0] - 1, ctr[1] - 1] = log_rad[ctr[0] - 1, ctr[1] - 2]
    log_rad = np.log2(log_rad)
    xrcos, yrcos = rcos_fn(twidth, -twidth / 2, (0, 1))
    yrcos = np.sqrt(yrcos)
    yircos = np.sqrt(1.0 - yrcos ** 2)
    lo0mask = point_op(log_rad, yircos, xrcos[0], xrcos[1] - xrcos[0])
    imdft = np.fft.fftshift(np.fft.fft2(im))
    pyr, pind = _levels(imdft * lo0mask, log_rad, xrcos, yrcos, angle, ht, nbands)
    hi0mask = point_op(log_rad, yrcos, xrcos[0], xrcos[1] - xrcos[0])
    hi0 = np.fft.ifft2(np.fft.ifftshift(imdft * hi0mask))
    return np.concatenate([np.real(hi0).ravel(order="F")] + pyr), [hi0.shape] + pind


def pyr_band(pyr, pind, band):
    """pyrBand (1-based band index)."""
    start = sum(int(np.prod(s)) for s in pind[:band - 1])
    shape = pind[band - 1]
    return pyr[start:start + int(np.prod(shape))].reshape(shape, order="F")


def filter2_valid(window, a):
    wr, wc = window.shape
    out = np.zeros((a.shape[0] - wr + 1, a.shape[1] - wc + 1), dtype=np.result_type(a, window))
    for i in range(wr):
        for j in range(wc):
            out += window[i, j] * a[i:i + out.shape[0], j:j + out.shape[1]]
    return out


def fspecial_gaussian(size, sigma):
    siz = (np.asarray(size, np.float64) - 1) / 2
    x, y = np.meshgrid(np.arange(-siz[1], siz[1] + 1), np.arange(-siz[0], siz[0] + 1))
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma))
    h[h < np.finfo(np.float64).eps * h.max()] = 0
    return h / h.sum()


def cwssim_index(img1, img2, level, orientations, guardb, k):
    """cwssim_index.m on two grey images (0..255 scale)."""
    pyr1, pind = build_scf_pyr(img1, level, orientations - 1)
    pyr2, _ = build_scf_pyr(img2, level, orientations - 1)
    winsize = 7
    window = np.ones((7, 7)) / 49.0
    gb = guardb // (2 ** (level - 1))
    s = np.array(pind[(level - 1) * orientations + 1])
    w = None
    scores = []
    for i in range(1, orientations + 1):
        bandind = i + (level - 1) * orientations + 1
        band1, band2 = pyr_band(pyr1, pind, bandind), pyr_band(pyr2, pind, bandind)
        band1 = band1[gb:band1.shape[0] - gb, gb:band1.shape[1] - gb]
        band2 = band2[gb:band2.shape[0] - gb, gb:band2.shape[1] - gb]
        corr = band1 * np.conj(band2)
        varr = np.abs(band1) ** 2 + np.abs(band2) ** 2
        corr_band = filter2_valid(window, corr)
        varr_band = filter2_valid(window, varr)
        cssim_map = (2 * np.abs(corr_band) + k) / (varr_band + k)
        if w is None:  # the authors' size s - winsize + 1; with a guard band, the map's own size
            w = fspecial_gaussian(np.array(cssim_map.shape) if gb else s - winsize + 1, s[0] / 4)
        scores.append(np.sum(cssim_map * w))
    return float(np.mean(scores))


def rgb2gray(rgb):
    """MATLAB rgb2gray without rounding, [0, 1] in, [0, 1] out."""
    return np.asarray(rgb, np.float64) @ np.asarray(RGB2GRAY)
