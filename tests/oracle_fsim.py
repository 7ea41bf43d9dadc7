"""Float64 numpy transcription of the authors' ``FeatureSIM.m`` (Zhang, Zhang, Mou, Zhang 2011, FSIM
Version 1.0, with the ``phasecong2`` and ``lowpassfilter`` of Kovesi that it embeds), used as a test oracle.

It follows the MATLAB script statement by statement, in double precision and with MATLAB's 1-based
conventions spelled out: ``conv2(A, K, 'same')`` is the block of the full convolution starting at
``floor(size(K) / 2)`` (0-based) with zero padding, ``A(1:F:end, 1:F:end)`` keeps every F-th pixel,
``median`` averages the two middle values of an even count, ``real(p .^ lambda)`` is the principal
complex power. Only the 0 / 0 of flat images is left as MATLAB has it (NaN).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import signal


def _conv2_same(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    full = signal.convolve2d(image, kernel, mode="full")
    top, left = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[top:top + image.shape[0], left:left + image.shape[1]]


def _frequency_range(n: int) -> np.ndarray:
    if n % 2:
        return np.arange(-(n - 1) / 2, (n - 1) / 2 + 1) / (n - 1)
    return np.arange(-n / 2, n / 2) / n


def _lowpassfilter(rows: int, cols: int, cutoff: float, n: int) -> np.ndarray:
    x, y = np.meshgrid(_frequency_range(cols), _frequency_range(rows))
    radius = np.sqrt(x ** 2 + y ** 2)
    return np.fft.ifftshift(1.0 / (1.0 + (radius / cutoff) ** (2 * n)))


def phasecong2(im: np.ndarray) -> np.ndarray:
    nscale, norient, min_wave_length, mult = 4, 4, 6, 2
    sigma_on_f, d_theta_on_sigma, k, epsilon = 0.55, 1.2, 2.0, 1e-4
    theta_sigma = math.pi / norient / d_theta_on_sigma
    rows, cols = im.shape
    imagefft = np.fft.fft2(im)
    x, y = np.meshgrid(_frequency_range(cols), _frequency_range(rows))
    radius = np.fft.ifftshift(np.sqrt(x ** 2 + y ** 2))
    theta = np.fft.ifftshift(np.arctan2(-y, x))
    radius[0, 0] = 1.0
    sintheta, costheta = np.sin(theta), np.cos(theta)
    lp = _lowpassfilter(rows, cols, 0.45, 15)
    log_gabor = []
    for s in range(1, nscale + 1):
        fo = 1.0 / (min_wave_length * mult ** (s - 1))
        g = np.exp(-(np.log(radius / fo)) ** 2 / (2 * math.log(sigma_on_f) ** 2)) * lp
        g[0, 0] = 0.0
        log_gabor.append(g)
    spread = []
    for o in range(1, norient + 1):
        angl = (o - 1) * math.pi / norient
        ds = sintheta * math.cos(angl) - costheta * math.sin(angl)
        dc = costheta * math.cos(angl) + sintheta * math.sin(angl)
        dtheta = np.abs(np.arctan2(ds, dc))
        spread.append(np.exp(-dtheta ** 2 / (2 * theta_sigma ** 2)))

    energy_all = np.zeros((rows, cols))
    an_all = np.zeros((rows, cols))
    for o in range(norient):
        sum_e = np.zeros((rows, cols))
        sum_o = np.zeros((rows, cols))
        sum_an = np.zeros((rows, cols))
        energy = np.zeros((rows, cols))
        eo, ifft_filters = [], []
        em_n = None
        for s in range(nscale):
            filt = log_gabor[s] * spread[o]
            ifft_filters.append(np.real(np.fft.ifft2(filt)) * math.sqrt(rows * cols))
            eo.append(np.fft.ifft2(imagefft * filt))
            an = np.abs(eo[s])
            sum_an += an
            sum_e += np.real(eo[s])
            sum_o += np.imag(eo[s])
            if s == 0:
                em_n = np.sum(filt ** 2)
        x_energy = np.sqrt(sum_e ** 2 + sum_o ** 2) + epsilon
        mean_e, mean_o = sum_e / x_energy, sum_o / x_energy
        for s in range(nscale):
            e, od = np.real(eo[s]), np.imag(eo[s])
            energy += e * mean_e + od * mean_o - np.abs(e * mean_o - od * mean_e)
        median_e2n = np.median(np.abs(eo[0]).reshape(-1) ** 2)
        mean_e2n = -median_e2n / math.log(0.5)
        noise_power = mean_e2n / em_n
        est_sum_an2 = np.zeros((rows, cols))
        for s in range(nscale):
            est_sum_an2 += ifft_filters[s] ** 2
        est_sum_ai_aj = np.zeros((rows, cols))
        for si in range(nscale - 1):
            for sj in range(si + 1, nscale):
                est_sum_ai_aj += ifft_filters[si] * ifft_filters[sj]
        est_noise_energy2 = 2 * noise_power * np.sum(est_sum_an2) + 4 * noise_power * np.sum(est_sum_ai_aj)
        tau = math.sqrt(est_noise_energy2 / 2)
        est_noise_energy = tau * math.sqrt(math.pi / 2)
        est_noise_energy_sigma = math.sqrt((2 - math.pi / 2) * tau ** 2)
        t = (est_noise_energy + k * est_noise_energy_sigma) / 1.7
        energy = np.maximum(energy - t, 0.0)
        energy_all += energy
        an_all += sum_an
    return energy_all / an_all


def feature_sim(image_ref: np.ndarray, image_dis: np.ndarray) -> tuple[float, float, int]:
    """``[FSIM, FSIMc] = FeatureSIM(imageRef, imageDis)`` on H x W x 3 or H x W images in 0..255 (float64);
    also returns the number of pixels where ``ISim .* QSim`` is negative (the complex-power branch)."""
    ref, dis = np.asarray(image_ref, np.float64), np.asarray(image_dis, np.float64)
    rows, cols = ref.shape[:2]
    i1, i2, q1, q2 = (np.ones((rows, cols)) for _ in range(4))
    if ref.ndim == 3:
        y1 = 0.299 * ref[..., 0] + 0.587 * ref[..., 1] + 0.114 * ref[..., 2]
        y2 = 0.299 * dis[..., 0] + 0.587 * dis[..., 1] + 0.114 * dis[..., 2]
        i1 = 0.596 * ref[..., 0] - 0.274 * ref[..., 1] - 0.322 * ref[..., 2]
        i2 = 0.596 * dis[..., 0] - 0.274 * dis[..., 1] - 0.322 * dis[..., 2]
        q1 = 0.211 * ref[..., 0] - 0.523 * ref[..., 1] + 0.312 * ref[..., 2]
        q2 = 0.211 * dis[..., 0] - 0.523 * dis[..., 1] + 0.312 * dis[..., 2]
    else:
        y1, y2 = ref, dis
    f = max(1, int(math.floor(min(rows, cols) / 256 + 0.5)))
    ave = np.ones((f, f)) / f ** 2
    i1, i2, q1, q2, y1, y2 = (_conv2_same(a, ave)[::f, ::f] for a in (i1, i2, q1, q2, y1, y2))

    pc1, pc2 = phasecong2(y1), phasecong2(y2)
    dx = np.array([[3, 0, -3], [10, 0, -10], [3, 0, -3]]) / 16
    dy = np.array([[3, 10, 3], [0, 0, 0], [-3, -10, -3]]) / 16
    g1 = np.sqrt(_conv2_same(y1, dx) ** 2 + _conv2_same(y1, dy) ** 2)
    g2 = np.sqrt(_conv2_same(y2, dx) ** 2 + _conv2_same(y2, dy) ** 2)

    t1, t2, t3, t4, lam = 0.85, 160, 200, 200, 0.03
    pc_sim = (2 * pc1 * pc2 + t1) / (pc1 ** 2 + pc2 ** 2 + t1)
    g_sim = (2 * g1 * g2 + t2) / (g1 ** 2 + g2 ** 2 + t2)
    pcm = np.maximum(pc1, pc2)
    fsim = np.sum(g_sim * pc_sim * pcm) / np.sum(pcm)
    i_sim = (2 * i1 * i2 + t3) / (i1 ** 2 + i2 ** 2 + t3)
    q_sim = (2 * q1 * q2 + t4) / (q1 ** 2 + q2 ** 2 + t4)
    product = i_sim * q_sim
    chroma = np.real(product.astype(np.complex128) ** lam)
    fsimc = np.sum(g_sim * pc_sim * chroma * pcm) / np.sum(pcm)
    return float(fsim), float(fsimc), int(np.sum(product < 0))
