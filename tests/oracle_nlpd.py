"""Float64 numpy transcriptions of the published NLPD algorithms, written for the tests.

* :func:`nlp_dist_2016` follows the authors' MATLAB ``NLP_dist.m`` (Laparra, Ballé, Berardino, Simoncelli,
  HVEI 2016; NLPyr page of the Laboratory for Computational Vision): ``laplacian_pyramid_s`` with
  ``downsample`` (``imfilter(I, f'*f, 'symmetric')``, ``R(1:2:r, 1:2:c)``) and ``upsample``
  (``padarray(I, [1 1], 'replicate')``, zeros inserted, ``4 * I``, ``imfilter(R, f'*f)`` with zero borders,
  ``R(3:r-2-odd(1), 3:c-2-odd(2))``), divisive normalisation ``L ./ (sigma + conv2(abs(L), F2, 'same'))``
  and ``mean(sqrt(mean((Y_ori{b}(:) - Y_dist{b}(:)).^2)))``. ``taps3x3`` gives pyiqa's filters (the 3 x 3
  centres). Each 2-D step is done as MATLAB does it, on the full 2-D image (no separable shortcut).
* :func:`nlpd_ding` follows ``IQA_pytorch/NLPD.py`` (Ding, Ma, Wang, Simoncelli, IJCV 2021): reflect padding,
  strided 5 x 5 filtering, ``nn.Upsample(scale_factor=2, mode='bilinear', align_corners=True)`` (done with
  ``np.interp``), the 5 x 5 filter again, ``F.interpolate(..., mode='nearest')`` to the finer size when it
  differs, and 3 x 3 correlation of ``|band|`` after reflect padding by 1.

Both take H x W x C float arrays (C channels transformed separately; the band RMS is over all channels).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

F1 = np.array([0.05, 0.25, 0.4, 0.25, 0.05])
F5 = np.outer(F1, F1)
SIGMAS = [0.0248, 0.0185, 0.0179, 0.0191, 0.0220, 0.2782]


def dn_filters_5x5():
    """The six 5 x 5 ``DN_filts(b).F2`` matrices of NLP_dist.m."""
    f = [np.zeros((5, 5)) for _ in range(6)]
    f[0][1, 2], f[0][2, 1], f[0][2, 3], f[0][2, 4], f[0][3, 2] = 0.1011, 0.1493, 0.1460, 0.0072, 0.1015
    f[1][1:4, 1:4] = [[0, 0.0757, 0], [0.1986, 0, 0.1846], [0, 0.0837, 0]]
    f[2][1:4, 1:4] = [[0, 0.0477, 0], [0.2138, 0, 0.2243], [0, 0.0467, 0]]
    f[3][1:4, 1:4] = [[0, 0, 0], [0.2503, 0, 0.2616], [0, 0, 0]]
    f[4][1:4, 1:4] = [[0, 0, 0], [0.2598, 0, 0.2552], [0, 0, 0]]
    f[5][1:4, 1:4] = [[0, 0, 0], [0.2215, 0, 0.0717], [0, 0, 0]]
    return f


def _matlab_downsample(image):
    padded = np.pad(image, 2, mode="symmetric")
    return signal.correlate2d(padded, F5, mode="valid")[::2, ::2]


def _matlab_upsample(image, odd):
    padded = np.pad(image, 1, mode="edge")
    r, c = 2 * padded.shape[0], 2 * padded.shape[1]
    spread = np.zeros((r, c))
    spread[::2, ::2] = 4 * padded
    filtered = signal.correlate2d(spread, F5, mode="same")  # imfilter default: zero borders, correlation
    return filtered[2:r - 2 - odd[0], 2:c - 2 - odd[1]]


def _laplacian_pyramid_s(image, levels):
    pyramid, j = [], image
    for _ in range(levels - 1):
        coarse = _matlab_downsample(j)
        odd = (2 * coarse.shape[0] - j.shape[0], 2 * coarse.shape[1] - j.shape[1])
        pyramid.append(j - _matlab_upsample(coarse, odd))
        j = coarse
    pyramid.append(j)
    return pyramid


def nlp_2016(image, *, levels=6, taps3x3=False):
    """The normalised pyramid of one H x W grey image (NLP in NLP_dist.m)."""
    filters = dn_filters_5x5()
    if taps3x3:
        for f in filters:
            f[[0, 4], :] = 0
            f[:, [0, 4]] = 0
    parameters = list(range(levels - 1)) + [5]
    out = []
    for band, b in zip(_laplacian_pyramid_s(np.asarray(image, np.float64), levels), parameters):
        amplitude = signal.convolve2d(np.abs(band), filters[b], mode="same")  # conv2(..., 'same')
        out.append(band / (SIGMAS[b] + amplitude))
    return out


def _pool(bands_x, bands_y):
    return float(np.mean([np.sqrt(np.mean((np.stack(a) - np.stack(b)) ** 2)) for a, b in zip(bands_x, bands_y)]))


def nlp_dist_2016(x, y, *, levels=6, taps3x3=False):
    """NLP_dist.m distance of two H x W x C images (channels separately, RMS over all of them)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    per_channel = [(nlp_2016(x[..., c], levels=levels, taps3x3=taps3x3),
                    nlp_2016(y[..., c], levels=levels, taps3x3=taps3x3)) for c in range(x.shape[-1])]
    bands_x = list(zip(*[p[0] for p in per_channel]))
    bands_y = list(zip(*[p[1] for p in per_channel]))
    return _pool(bands_x, bands_y)


def _bilinear_up_align_corners(image):
    h, w = image.shape
    rows = np.linspace(0.0, h - 1.0, 2 * h)
    cols = np.linspace(0.0, w - 1.0, 2 * w)
    along_w = np.stack([np.interp(cols, np.arange(w), row) for row in image])
    return np.stack([np.interp(rows, np.arange(h), col) for col in along_w.T]).T


def _nearest(image, shape):
    h, w = image.shape
    ri = np.minimum(np.floor(np.arange(shape[0]) * (h / shape[0])).astype(int), h - 1)
    ci = np.minimum(np.floor(np.arange(shape[1]) * (w / shape[1])).astype(int), w - 1)
    return image[np.ix_(ri, ci)]


def nlp_ding(image, *, levels=6):
    """IQA_pytorch NLPD.pyramid of one H x W image."""
    filters = [f[1:4, 1:4] for f in dn_filters_5x5()]
    out, j = [], np.asarray(image, np.float64)
    for b in range(levels):
        coarse = signal.correlate2d(np.pad(j, 2, mode="reflect"), F5, mode="valid")[::2, ::2]
        up = signal.correlate2d(np.pad(_bilinear_up_align_corners(coarse), 2, mode="reflect"), F5, mode="valid")
        if up.shape != j.shape:
            up = _nearest(up, j.shape)
        band = j - up
        amplitude = signal.correlate2d(np.pad(np.abs(band), 1, mode="reflect"), filters[b], mode="valid")
        out.append(band / (SIGMAS[b] + amplitude))
        j = coarse
    return out


def nlpd_ding(x, y, *, levels=6):
    """IQA_pytorch NLPD.nlpd of two H x W x C images."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    bx = list(zip(*[nlp_ding(x[..., c], levels=levels) for c in range(x.shape[-1])]))
    by = list(zip(*[nlp_ding(y[..., c], levels=levels) for c in range(y.shape[-1])]))
    return _pool(bx, by)
