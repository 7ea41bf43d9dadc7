"""NLPD against float64 numpy transcriptions of the published algorithms (tests/oracle_nlpd.py).

piq 0.8 has no NLPD. The default (``variant="laparra2016"``) is compared with a transcription of the authors'
``NLP_dist.m`` on MATLAB ``rgb2gray`` (unrounded) grey images; ``variant="pyiqa"`` with the same
transcription on BT.601 luma and 3 x 3 normalisation filters; ``variant="ding"`` with a
transcription of ``IQA_pytorch/NLPD.py`` on the three RGB channels. All to 1e-4 relative.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import oracle_nlpd as oracle
from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.laplacian import nlpd
from helpers import assert_close

GRAY = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
LUMA = np.array([0.299, 0.587, 0.114])


def _gray(a):
    return (np.asarray(a, np.float64) @ GRAY)[..., None]


def _luma(a):
    return (np.asarray(a, np.float64) @ LUMA)[..., None]


@pytest.fixture(scope="module")
def default_scores(sample_pairs):
    refs, dists = sample_pairs
    return np.asarray(nlpd(dists, refs))


def test_default_equals_nlp_dist_m_transcription(sample_pairs, default_scores):
    refs, dists = sample_pairs
    expected = [oracle.nlp_dist_2016(_gray(d), _gray(r)) for d, r in zip(dists, refs)]
    assert_close(default_scores, expected, rtol=1e-4, what="nlpd laparra2016 vs NLP_dist.m transcription")


def test_identical_images_score_zero_and_stronger_distortion_scores_worse(sample_pairs, default_scores):
    refs, _ = sample_pairs
    assert np.all(np.asarray(nlpd(refs, refs)) == 0.0)
    # sample_pairs alternates levels 1 and 3 of each (photograph, distortion).
    weak, strong = default_scores[0::2], default_scores[1::2]
    assert np.all(default_scores > 0)
    assert strong.mean() > weak.mean() and np.mean(strong > weak) >= 0.75, (weak, strong)


def test_pyiqa_variant_equals_transcription_on_luma(sample_pairs):
    refs, dists = sample_pairs
    refs, dists = refs[::3], dists[::3]
    expected = [oracle.nlp_dist_2016(_luma(d), _luma(r), taps3x3=True) for d, r in zip(dists, refs)]
    assert_close(nlpd(dists, refs, variant="pyiqa"), expected, rtol=1e-4, what="nlpd pyiqa variant")


def test_ding_variant_equals_iqa_pytorch_transcription(sample_pairs):
    refs, dists = sample_pairs
    refs, dists = refs[::3], dists[::3]
    expected = [oracle.nlpd_ding(d, r) for d, r in zip(dists, refs)]
    assert_close(nlpd(dists, refs, variant="ding"), expected, rtol=1e-4, what="nlpd ding variant (RGB)")


@pytest.fixture(scope="module")
def odd_images():
    ref = sample_image("chelsea")[20:151, 30:187]  # 131 x 157
    dists = np.stack([distort(ref, kind, 2, seed=2) for kind in ("blur", "noise", "jpeg")])
    return ref, dists


def test_odd_size_grey_input_and_shared_reference(odd_images):
    ref, dists = odd_images
    grey_ref, grey_dists = _gray(ref).astype(np.float32), np.stack([_gray(d) for d in dists]).astype(np.float32)
    ours = nlpd(grey_dists, grey_ref[None])  # one reference shared by the batch
    expected = [oracle.nlp_dist_2016(d, grey_ref) for d in grey_dists]
    assert_close(ours, expected, rtol=1e-4, what="nlpd 131 x 157 grey, shared reference")


def test_odd_size_ding_five_levels(odd_images):
    ref, dists = odd_images
    expected = [oracle.nlpd_ding(d, ref, levels=5) for d in dists]
    assert_close(nlpd(dists, ref[None], variant="ding", levels=5), expected, rtol=1e-4, what="nlpd ding 5 levels")


def test_shallow_pyramid_on_small_rgb_crops(odd_images):
    ref, dists = odd_images
    ref, dists = ref[:40, :45], dists[:, :40, :45]
    expected = [oracle.nlp_dist_2016(d, ref, levels=3) for d in dists]
    assert_close(nlpd(dists, ref[None], colour="rgb", levels=3), expected, rtol=1e-4, what="nlpd rgb 3 levels")


def test_too_small_and_bad_options_raise():
    with pytest.raises(InputError, match="at least 33 x 33"):
        nlpd(jnp.zeros((1, 32, 64, 3)), jnp.zeros((1, 32, 64, 3)))
    with pytest.raises(InputError, match="at least 65 x 65"):
        nlpd(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), variant="ding")
    with pytest.raises(InputError, match="at least 9 x 9"):
        nlpd(jnp.zeros((1, 8, 8, 1)), jnp.zeros((1, 8, 8, 1)), levels=4)
    with pytest.raises(InputError, match="levels"):
        nlpd(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), levels=7)
    with pytest.raises(InputError, match="variant"):
        nlpd(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), variant="laparra2017")
    with pytest.raises(InputError, match="colour"):
        nlpd(jnp.zeros((1, 64, 64, 3)), jnp.zeros((1, 64, 64, 3)), colour="lab")


def test_float32_at_highest_precision():
    from helpers import assert_float32_highest
    import jax

    x = jnp.zeros((1, 70, 70, 3))
    for variant in ("laparra2016", "ding"):
        assert_float32_highest(jax.make_jaxpr(lambda a, b: nlpd(a, b, variant=variant))(x, x), f"nlpd {variant}")
