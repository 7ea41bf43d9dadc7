"""Pixel-domain VIF against piq 0.8 and a float64 transcription of the authors' ``vifp_mscale.m``.

Conventions: ``vif(x, y)`` takes the distorted image first, as ``piq.vif_p(x, y)`` does. piq is run on
float64 tensors with its own conventions, which ``colour="luma", eps=1e-8, ratio_eps=1e-8`` reproduces;
the default (MATLAB ``rgb2gray`` unrounded, thresholds 1e-10, ``num / den``) is compared with
:func:`vifp_mscale` below.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from asym_jax.errors import InputError
from asym_jax.metrics.information import one_minus_clipped, vif
from helpers import assert_close, to_torch

PIQ_OPTIONS = {"colour": "luma", "eps": 1e-8, "ratio_eps": 1e-8}


def vifp_mscale(ref: np.ndarray, dist: np.ndarray, sigma_nsq: float = 2.0) -> float:
    """Float64 transcription of ``vifp_mscale.m`` (Sheikh and Bovik, LIVE), step by step: grey images on
    the 0..255 scale; four scales with ``fspecial('gaussian', N, N / 5)``, ``N = 2^(4 - scale + 1) + 1``;
    ``filter2(win, ., 'valid')``, and for scales 2..4 the images filtered and subsampled ``(1:2:end,
    1:2:end)`` first; the 1e-10 thresholds in the script's order; ``num / den``."""
    ref, dist = np.asarray(ref, np.float64), np.asarray(dist, np.float64)
    num = den = 0.0
    for scale in range(1, 5):
        n = 2 ** (4 - scale + 1) + 1
        axis = np.arange(n) - (n - 1) / 2.0
        win = np.exp(-(axis[:, None] ** 2 + axis[None, :] ** 2) / (2.0 * (n / 5.0) ** 2))
        win /= win.sum()

        def filt(a, win=win):
            return signal.correlate2d(a, win, mode="valid")

        if scale > 1:
            ref, dist = filt(ref)[::2, ::2], filt(dist)[::2, ::2]
        mu1, mu2 = filt(ref), filt(dist)
        sigma1_sq = filt(ref * ref) - mu1 * mu1
        sigma2_sq = filt(dist * dist) - mu2 * mu2
        sigma12 = filt(ref * dist) - mu1 * mu2
        sigma1_sq[sigma1_sq < 0] = 0
        sigma2_sq[sigma2_sq < 0] = 0
        g = sigma12 / (sigma1_sq + 1e-10)
        sv_sq = sigma2_sq - g * sigma12
        low = sigma1_sq < 1e-10
        g[low] = 0
        sv_sq[low] = sigma2_sq[low]
        sigma1_sq[low] = 0
        low = sigma2_sq < 1e-10
        g[low] = 0
        sv_sq[low] = 0
        low = g < 0
        sv_sq[low] = sigma2_sq[low]
        g[low] = 0
        sv_sq[sv_sq <= 1e-10] = 1e-10
        num += np.sum(np.log10(1 + g ** 2 * sigma1_sq / (sv_sq + sigma_nsq)))
        den += np.sum(np.log10(1 + sigma1_sq / sigma_nsq))
    return num / den


MATLAB_GRAY = (0.298936021293775, 0.587043074451121, 0.114020904255103)  # rgb2gray: inv(NTSC matrix) row 1


def _gray255(rgb: np.ndarray) -> np.ndarray:
    """MATLAB rgb2gray of a [0, 1] RGB image, unrounded, on the 0..255 scale."""
    return np.asarray(rgb, np.float64) @ np.asarray(MATLAB_GRAY) * 255.0


@pytest.fixture(scope="module")
def scores(sample_pairs):
    refs, dists = sample_pairs
    return np.asarray(vif(dists, refs))


# 12 of the 36 pairs: every photograph, distortion and level (the float64 references are slow).
SUBSET = slice(None, None, 3)


def test_vif_equals_piq(sample_pairs, piq, torch):
    refs, dists = (a[SUBSET] for a in sample_pairs)
    expected = piq.vif_p(to_torch(torch, dists).double(), to_torch(torch, refs).double(), reduction="none")
    assert_close(vif(dists, refs, **PIQ_OPTIONS), expected.numpy(), rtol=1e-4, what="vif vs piq.vif_p")


def test_vif_default_equals_vifp_mscale(sample_pairs, scores):
    refs, dists = sample_pairs
    expected = [vifp_mscale(_gray255(r), _gray255(d)) for r, d in zip(refs[SUBSET], dists[SUBSET])]
    assert_close(scores[SUBSET], expected, rtol=1e-4, what="vif vs vifp_mscale.m")
    assert_close(1 - scores[SUBSET], 1 - np.asarray(expected), rtol=1e-4, what="1 - vif vs vifp_mscale.m")


def test_vif_odd_sizes_and_grey_input(sample_pairs):
    # 131 x 157 RGB, and a 400 x 420 grey image: vifp_mscale.m has no automatic downsampling, whatever the size.
    from asym_jax.data import distort, sample_image
    refs, dists = sample_pairs
    ref, dist = refs[:3, :131, :157], dists[:3, :131, :157]
    expected = [vifp_mscale(_gray255(r), _gray255(d)) for r, d in zip(ref, dist)]
    assert_close(vif(dist, ref), expected, rtol=1e-4, what="vif 131 x 157")

    big = sample_image("astronaut")[:400, :420]
    noisy = distort(big, "noise", 2)
    grey_ref, grey_dist = _gray255(big) / 255.0, _gray255(noisy) / 255.0
    ours = vif(grey_dist[None, ..., None].astype(np.float32), grey_ref[None, ..., None].astype(np.float32))
    assert_close(ours, [vifp_mscale(grey_ref * 255.0, grey_dist * 255.0)], rtol=1e-4, what="vif 400 x 420 grey")


def test_vif_identical_images_and_flat_reference(sample_pairs):
    refs, _ = sample_pairs
    assert np.all(np.asarray(vif(refs, refs)) == 1.0)
    flat = np.full((3, 131, 157, 3), 0.5, np.float32)  # the shape of test_vif_odd_sizes: no new compilation
    noise = np.random.default_rng(0).uniform(0, 1, flat.shape).astype(np.float32)
    # A reference without detail: 0 / 0 in vifp_mscale.m; 1 here, as piq gives.
    assert np.all(np.asarray(vif(noise, flat)) == 1.0)


def test_stronger_distortion_scores_lower(scores):
    by_level = scores.reshape(3, -1, 2)  # photograph x distortion x level (1, 3)
    assert np.all(scores > 0) and np.all(scores < 1)
    assert by_level[..., 1].mean() < by_level[..., 0].mean()
    assert np.mean(by_level[..., 1] < by_level[..., 0]) >= 0.75


def test_shared_reference(sample_pairs, scores):
    refs, dists = sample_pairs
    # The first pairs share one reference photograph.
    assert np.all(refs[:4] == refs[:1])
    assert_close(vif(dists[:4], refs[:1]), scores[:4], rtol=1e-6, what="shared reference")


def test_too_small_and_bad_options():
    x = jnp.zeros((1, 40, 64, 3))
    with pytest.raises(InputError, match="41 x 41"):
        vif(x, x)
    with pytest.raises(InputError, match="colour"):
        vif(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), colour="rgb")


def test_loss_gradient_zero_at_identity_and_finite_on_flats(sample_pairs):
    refs, dists = sample_pairs
    ref, dist = jnp.asarray(refs[:1, :64, :64]), jnp.asarray(dists[1:2, :64, :64])
    value_and_grad = jax.jit(jax.value_and_grad(lambda x, y: jnp.mean(one_minus_clipped(vif(x, y)))))
    value, grad = value_and_grad(ref, ref)
    assert float(value) == 0.0 and float(jnp.abs(grad).max()) == 0.0
    flat = jnp.full_like(ref, 0.5)
    for x, y in ((flat, flat), (flat, jnp.full_like(ref, 0.25)), (jnp.zeros_like(ref), jnp.zeros_like(ref)),
                 (dist, ref)):
        value, grad = value_and_grad(x, y)
        assert np.isfinite(float(value)) and np.all(np.isfinite(np.asarray(grad)))
    assert float(jnp.sum(grad * (dist - ref))) > 0
