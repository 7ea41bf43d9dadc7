"""SSIM and MS-SSIM against the authors' MATLAB code (float64 transcription) and against piq."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import matlab_oracles as mo
from asym_jax import metrics
from asym_jax.data import sample_image
from helpers import assert_close, to_torch


def test_ssim_default_equals_wang_reference_code(sample_pairs):
    refs, dists = sample_pairs
    ours = metrics.ssim(refs, dists)
    expected = [mo.ssim_index_maps(mo.rgb2gray_uint8(r), mo.rgb2gray_uint8(d))[0].mean() for r, d in zip(refs, dists)]
    assert_close(ours, expected, rtol=1e-5, what="ssim default vs ssim_index.m")


def test_ssim_default_equals_piq_on_matlab_gray(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    gray = lambda a: np.stack([mo.rgb2gray_uint8(i)[..., None] for i in a])
    expected = piq.ssim(to_torch(torch, gray(refs)), to_torch(torch, gray(dists)), data_range=255.0,
                        downsample=False, reduction="none")
    assert_close(metrics.ssim(refs, dists), expected.numpy(), rtol=1e-4, what="ssim vs piq on rgb2gray")


def test_ssim_rgb_float_equals_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    expected = piq.ssim(to_torch(torch, refs), to_torch(torch, dists), data_range=1.0, downsample=False, reduction="none")
    ours = metrics.ssim(refs, dists, colour="rgb", quantize=False)
    assert_close(ours, expected.numpy(), rtol=1e-4, what="ssim rgb vs piq")


def test_ssim_y_channel_equals_basicsr_convention(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    y = lambda a: np.stack([mo.bt601_y_limited(i)[..., None] for i in a]).astype(np.float32)
    expected = piq.ssim(to_torch(torch, y(refs)), to_torch(torch, y(dists)), data_range=255.0, downsample=False,
                        reduction="none")
    assert_close(metrics.ssim(refs, dists, colour="y", quantize=False), expected.numpy(), rtol=1e-4, what="ssim y")


@pytest.mark.parametrize("size", [(512, 512), (384, 451), (640, 700)])  # factors 2, 2 (1.5 rounds up), 3
def test_ssim_downsample_equals_ssim_2009(size):
    h, w = size
    ref = sample_image("hubble_deep_field")[:h, :w]
    dist = np.clip(ref + np.random.default_rng(0).normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    expected = mo.ssim_2009(mo.rgb2gray_uint8(ref), mo.rgb2gray_uint8(dist))
    ours = metrics.ssim(ref[None], dist[None], downsample=True)
    assert_close(ours, [expected], rtol=1e-5, what=f"ssim downsample {size}")


def test_8bit_grey_and_y_round_like_matlab_for_every_colour():
    """All 16.7 million 8-bit colours: rgb2gray equals MATLAB's double-precision rounding exactly; Y
    (rgb2ycbcr) too, except where Y is exactly k + 0.5 (105 colours): there double-precision noise
    decides which neighbour MATLAB's double arithmetic lands on, so either is accepted."""
    from fractions import Fraction

    from asym_jax.metrics import common
    v = np.arange(256, dtype=np.float32)
    x8 = np.stack(np.meshgrid(v, v, v, indexing="ij"), -1).reshape(4096, 4096, 3)
    x = jnp.asarray(x8 / 255.0)[None]
    gray = np.rint(np.asarray(jax.jit(lambda a: common.rgb_to_gray(a, quantize=True))(x))[0, ..., 0] * 255)
    assert np.array_equal(gray, mo.rgb2gray_uint8(x8 / 255.0))
    y = np.rint(np.asarray(jax.jit(lambda a: common.rgb_to_y(a, quantize=True))(x))[0, ..., 0] * 255)
    differ = np.argwhere(y != mo.matlab_round(mo.bt601_y_limited(x8 / 255.0)))
    assert len(differ) <= 105
    for i, j in differ:
        r, g, b = (int(c) for c in x8[i, j])
        exact = 16 + Fraction(65481 * r + 128553 * g + 24966 * b, 255000)
        assert exact.denominator == 2 and abs(Fraction(int(y[i, j])) - exact) == Fraction(1, 2)


def test_ssim_crop_border_and_errors():
    x = jnp.full((1, 40, 40, 3), 0.5)
    y = x.at[:, :4].set(0.0)  # differences only inside the 4-px border
    assert float(metrics.ssim(x, y, crop_border=4)[0]) == pytest.approx(1.0)
    assert float(metrics.ssim(x, y)[0]) < 1.0
    with pytest.raises(ValueError, match="smaller than the 11 x 11 window"):
        metrics.ssim(x[:, :10, :10], y[:, :10, :10])
    with pytest.raises(ValueError, match="colour"):
        metrics.ssim(x, y, colour="lab")
    with pytest.raises(ValueError, match="differ in shape"):
        metrics.ssim(x, y[:, :20])


def test_ms_ssim_rgb_float_equals_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    expected = piq.multi_scale_ssim(to_torch(torch, refs), to_torch(torch, dists), data_range=1.0, reduction="none")
    ours = metrics.ms_ssim(refs, dists, colour="rgb", quantize=False)
    assert_close(ours, expected.numpy(), rtol=1e-4, what="ms_ssim rgb vs piq")


def test_ms_ssim_default_equals_msssim_m(sample_pairs):
    refs, dists = sample_pairs
    expected = [mo.msssim(mo.rgb2gray_uint8(r), mo.rgb2gray_uint8(d)) for r, d in zip(refs, dists)]
    assert_close(metrics.ms_ssim(refs, dists), expected, rtol=1e-5, what="ms_ssim vs msssim.m")


def test_ms_ssim_odd_sizes_follow_matlab_downsampling():
    ref = sample_image("coffee")[:171, :203]
    dist = np.clip(ref * 0.8 + 0.1, 0, 1).astype(np.float32)
    expected = mo.msssim(mo.rgb2gray_uint8(ref), mo.rgb2gray_uint8(dist))
    assert_close(metrics.ms_ssim(ref[None], dist[None]), [expected], rtol=1e-5, what="ms_ssim odd size")


def test_ms_ssim_four_scales_on_128_crops(piq, torch, sample_pairs):
    refs, dists = (a[:, :128, :128] for a in sample_pairs)
    weights = torch.tensor(metrics.MS_SSIM_WEIGHTS[:4])
    expected = piq.multi_scale_ssim(to_torch(torch, refs), to_torch(torch, dists), data_range=1.0,
                                    scale_weights=weights, reduction="none")
    ours = metrics.ms_ssim(refs, dists, colour="rgb", quantize=False, num_scales=4)
    assert_close(ours, expected.numpy(), rtol=1e-4, what="ms_ssim 4 scales")
    with pytest.raises(ValueError, match="num_scales=4"):
        metrics.ms_ssim(refs, dists)


def test_ms_ssim_negative_structure_is_clamped_without_nan():
    x = jax.random.uniform(jax.random.PRNGKey(0), (2, 176, 176, 3))
    y = 1.0 - x  # anti-correlated: negative contrast-structure terms
    value = metrics.ms_ssim(x, y, colour="rgb", quantize=False)
    assert np.all(np.isfinite(value)) and np.all(np.asarray(value) >= 0)
    grad = jax.grad(lambda a: jnp.sum(metrics.ms_ssim(a, y, colour="rgb", quantize=False)))(x)
    assert np.all(np.isfinite(grad))
