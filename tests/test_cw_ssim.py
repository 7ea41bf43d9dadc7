"""CW-SSIM against a float64 numpy transcription of the authors' cwssim_index.m on matlabPyrTools'
buildSCFpyr (tests/oracle_cw_ssim.py; piq 0.8 has no CW-SSIM).

Conventions of the comparisons: RGB is converted with MATLAB rgb2gray, unrounded, on the 0..255 scale
(the module's default); the oracle sees the same grey image in float64 and uses K exactly as given
(no ``eps``: the module's default eps = 1e-6 changes none of these scores measurably).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import oracle_cw_ssim as oc
from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.steerable import _scf_plan, cw_ssim, scf_pyramid
from helpers import assert_close

# IQA_pytorch's / pyiqa's parameters, used on the 192 x 192 sample pairs (level 6 needs 256 x 256).
LEVEL4 = {"level": 4, "orientations": 8}
SUBSET = slice(0, 36, 3)  # 12 of the 36 sample pairs (every distortion kind, both levels) for the oracle


def _oracle(dists, refs, *, level=6, orientations=16, guardb=0, k=0.0, grey=lambda a: 255.0 * oc.rgb2gray(a)):
    return [oc.cwssim_index(grey(d), grey(r), level, orientations, guardb, k) for d, r in zip(dists, refs)]


def _luma8(rgb):
    """pyiqa's grey image: BT.601 luma rounded to 8 bits."""
    return np.round(255.0 * (np.asarray(rgb, np.float64) @ np.array([0.299, 0.587, 0.114])))


@pytest.fixture(scope="module")
def level4_scores(sample_pairs):
    refs, dists = sample_pairs
    return np.asarray(cw_ssim(dists, refs, **LEVEL4), np.float64)


def test_pyramid_matches_buildscfpyr():
    """Every band of an odd-sized, non-square image (69 x 90: odd and even crops at each level)."""
    image = 255.0 * oc.rgb2gray(sample_image("coffee")[:69, 7:97])
    pyr, pind = oc.build_scf_pyr(image, 4, 5)
    pyramid = jax.jit(functools.partial(scf_pyramid, levels=4, orientations=6))
    highpass, bands, lowpass = pyramid(jnp.asarray(image, jnp.float32)[None])
    ours = [np.asarray(highpass[0])] + [np.asarray(b[0, i]) for b in bands for i in range(6)] + [np.asarray(lowpass[0])]
    assert len(ours) == len(pind)
    for index, got in enumerate(ours, start=1):
        expected = oc.pyr_band(pyr, pind, index)
        assert got.shape == expected.shape, (index, got.shape, expected.shape)
        scale = np.abs(expected).max()
        assert np.abs(got - expected).max() <= 2e-6 * scale, (index, np.abs(got - expected).max(), scale)


@pytest.mark.parametrize("size", [(128, 128), (131, 157), (257, 300)])
def test_band_masks_vanish_at_zero_frequency(size):
    """What makes removing the mean (done before the transform) an identity for every band."""
    height, width = size
    levels = int(np.floor(np.log2(min(size)))) - 2
    _, _, plan = _scf_plan(height, width, levels, 16, 1.0)
    row, col = int(np.ceil((height + 0.5) / 2)) - 1, int(np.ceil((width + 0.5) / 2)) - 1
    for band_masks, (r0, c0, _, _), _ in plan:
        assert np.all(band_masks[:, row, col] == 0)
        row, col = row - r0, col - c0


def test_default_matches_cwssim_index():
    """Level 6, 16 orientations, guardb 0, K 0 on a 260 x 390 crop (non-square: the pooling weight's
    sigma is a quarter of the band's height) with two distortions."""
    ref = sample_image("chelsea")[:260, :390]
    dists = np.stack([distort(ref, "noise", 2), distort(ref, "jpeg", 2), distort(ref, "blur", 4)])
    refs = np.stack([ref, ref, ref])
    ours = np.asarray(cw_ssim(dists, refs), np.float64)
    expected = np.asarray(_oracle(dists, refs))
    assert_close(ours, expected, rtol=1e-4, what="cw_ssim default")
    assert_close(1.0 - ours, 1.0 - expected, rtol=2e-2, atol=2e-6, what="1 - cw_ssim default")
    # The coarsest band barely sees mild distortions (1 - score ~ 5e-5, near float32's resolution of scores
    # near 1): the strong blur (1 - score ~ 3.5e-4) checks the loss to 0.5%, which a 5 x 5 window would miss
    # by 1.8%.
    assert_close(1.0 - ours[2], 1.0 - expected[2], rtol=5e-3, what="1 - cw_ssim default, blur 4")


def test_options_match_cwssim_index(sample_pairs, level4_scores):
    """pyiqa's / IQA_pytorch's parameters (level 4, 8 orientations) on 12 sample pairs; on 4, K, a guard
    band (guardb 8 at level 4 discards one coefficient at each border) and pyiqa's 8-bit luma."""
    refs, dists = sample_pairs
    expected = np.asarray(_oracle(dists[SUBSET], refs[SUBSET], **LEVEL4))
    assert_close(level4_scores[SUBSET], expected, rtol=1e-4, what="cw_ssim level 4, 8 orientations")
    assert_close(1.0 - level4_scores[SUBSET], 1.0 - expected, rtol=1e-2, atol=1e-5, what="1 - cw_ssim level 4")
    few = slice(1, 36, 9)
    ours = cw_ssim(dists[few], refs[few], level=4, orientations=8, guardb=8, k=100.0, colour="luma", quantize=True)
    expected = _oracle(dists[few], refs[few], level=4, orientations=8, guardb=8, k=100.0, grey=_luma8)
    assert_close(ours, expected, rtol=1e-4, what="cw_ssim guardb 8, K 100, 8-bit luma")


def test_odd_size_grey_input_and_shared_reference():
    ref = sample_image("astronaut")[:131, 20:177]
    dists = np.stack([distort(ref, "blur", 1), distort(ref, "noise", 2)])
    options = {"level": 3, "orientations": 4}
    ours = cw_ssim(dists, ref[None], **options)  # one reference shared by the batch
    assert ours.shape == (2,)
    assert_close(ours, _oracle(dists, [ref, ref], **options), rtol=1e-4, what="cw_ssim 131 x 157, shared reference")
    grey = lambda a: (np.asarray(a, np.float64) @ np.asarray(oc.RGB2GRAY))[..., None].astype(np.float32)  # noqa: E731
    assert_close(cw_ssim(grey(dists), grey(ref[None]), **options), ours, rtol=1e-5, what="grey input")
    # Flat images (no band energy) score 1.
    flat = cw_ssim(np.full_like(dists, 0.5), np.full_like(dists[:1], 0.25), **options)
    assert_close(flat, [1.0, 1.0], rtol=1e-6, what="flat")


def test_identical_images_score_one(sample_pairs):
    refs, _ = sample_pairs
    assert_close(cw_ssim(refs, refs, **LEVEL4), np.ones(len(refs)), rtol=1e-6, what="x == y")


def test_stronger_distortion_scores_lower(level4_scores):
    weak, strong = level4_scores[0::2], level4_scores[1::2]  # levels 1 and 3 of each distortion
    assert strong.mean() < weak.mean()
    assert np.sum(strong < weak) >= 0.75 * len(weak)


def test_input_errors():
    small = jnp.zeros((1, 255, 300, 3))
    with pytest.raises(InputError, match="256 x 256"):
        cw_ssim(small, small)
    with pytest.raises(InputError, match="32 x 32"):
        cw_ssim(small[:, :31, :31], small[:, :31, :31], level=3)
    image = jnp.zeros((1, 64, 64, 1))
    with pytest.raises(InputError, match="guardb"):
        cw_ssim(image, image, level=3, guardb=3)
    with pytest.raises(InputError, match="channels"):
        cw_ssim(jnp.zeros((1, 64, 64, 2)), jnp.zeros((1, 64, 64, 2)), level=3)
    with pytest.raises(InputError, match="colour"):
        cw_ssim(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), level=3, colour="lab")
