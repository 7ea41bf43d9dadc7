"""PSNR, PSNR-Y, pixel losses and GMSD against piq, skimage and the authors' MATLAB code."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import matlab_oracles as mo
from asym_jax import metrics
from asym_jax.data import sample_image
from helpers import assert_close, to_torch


def test_psnr_equals_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    expected = piq.psnr(to_torch(torch, refs), to_torch(torch, dists), data_range=1.0, reduction="none")
    assert_close(metrics.psnr(refs, dists), expected.numpy(), rtol=1e-5, what="psnr")


def test_psnr_y_equals_basicsr_formula_and_skimage(sample_pairs):
    from skimage.color import rgb2ycbcr
    from skimage.metrics import peak_signal_noise_ratio

    refs, dists = sample_pairs
    for border in (0, 4):
        ours = metrics.psnr_y(refs, dists, crop_border=border)
        expected = []
        for r, d in zip(refs, dists):
            yr, yd = mo.bt601_y_limited(r), mo.bt601_y_limited(d)
            assert_close(yr, rgb2ycbcr(r)[..., 0], rtol=1e-6, what="skimage rgb2ycbcr Y")
            if border:
                yr, yd = yr[border:-border, border:-border], yd[border:-border, border:-border]
            expected.append(peak_signal_noise_ratio(yr, yd, data_range=255.0))
        assert_close(ours, expected, rtol=1e-5, what=f"psnr_y crop {border}")


def test_psnr_identical_images_are_finite():
    x = jnp.full((2, 8, 8, 3), 0.3)
    assert np.all(np.asarray(metrics.psnr(x, x)) == 100.0)


def test_pixel_losses(sample_pairs):
    refs, dists = sample_pairs
    diff = refs.astype(np.float64) - dists
    assert_close(metrics.l1(refs, dists), np.abs(diff).mean(axis=(1, 2, 3)), rtol=1e-5, what="l1")
    assert_close(metrics.mse(refs, dists), (diff ** 2).mean(axis=(1, 2, 3)), rtol=1e-5, what="mse")
    assert_close(metrics.charbonnier(refs, dists), np.sqrt(diff ** 2 + 1e-12).mean(axis=(1, 2, 3)), rtol=1e-5,
                 what="charbonnier")


def test_gmsd_equals_piq_with_population_std(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    expected = piq.gmsd(to_torch(torch, refs), to_torch(torch, dists), data_range=1.0, reduction="none")
    assert_close(metrics.gmsd(refs, dists, ddof=0), expected.numpy(), rtol=1e-4, what="gmsd vs piq")


@pytest.mark.parametrize("size", [(192, 192), (171, 203)])
def test_gmsd_default_equals_gmsd_m(size):
    ref = sample_image("chelsea")[: size[0], : size[1]]
    dist = np.clip(ref + np.random.default_rng(1).normal(0, 0.04, ref.shape), 0, 1).astype(np.float32)
    assert_close(metrics.gmsd(ref[None], dist[None]), [mo.gmsd(ref, dist)], rtol=1e-4, what=f"gmsd {size}")
