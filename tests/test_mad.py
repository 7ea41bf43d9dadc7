"""MAD (most apparent distortion) against a float64 transcription of the authors' ``MAD_index.m``.

piq 0.8 has no MAD, so the oracle is ``tests/oracle_mad.py`` (``MAD_index.m``, 2011 release, with the
``ical_std.c`` / ``ical_stat.c`` MEX helpers; grey by MATLAB rgb2gray weights, unrounded, on 0..255), run with
the MEX code's exact-zero flat test (``flat_std=0``): the photographs here have no flat log-Gabor blocks, so
the module's documented ``FLAT_STD`` does not change them. Crops are small (96 x 96) to keep the module fast.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import oracle_mad as om
import pytest
from helpers import assert_close

from asym_jax.errors import InputError
from asym_jax.metrics import apparent as mad_module

CROP = 96
ORACLE_PAIRS = 6  # the oracle is slow: a spread of the batch (both levels, every kind among them)


@pytest.fixture(scope="module")
def batch(sample_pairs):
    """Central 96 x 96 crops of the sample pairs, plus one identical pair at the end."""
    refs, dists = sample_pairs
    top = (refs.shape[1] - CROP) // 2
    refs = refs[:, top:top + CROP, top:top + CROP]
    dists = dists[:, top:top + CROP, top:top + CROP]
    refs = np.concatenate([refs, refs[:1]])
    dists = np.concatenate([dists, refs[:1]])
    return refs, dists


@pytest.fixture(scope="module")
def scores(batch):
    refs, dists = batch
    return np.asarray(mad_module.mad(dists, refs))


@pytest.fixture(scope="module")
def stages(batch):
    refs, dists = batch
    return tuple(np.asarray(s) for s in mad_module.mad_stages(dists, refs))


def _oracle_indices(n):
    return np.linspace(0, n - 2, ORACLE_PAIRS).round().astype(int)


@pytest.fixture(scope="module")
def oracle(batch):
    refs, dists = batch
    idx = _oracle_indices(len(refs))
    out = np.array([om.mad_index(om.rgb2gray_unrounded(refs[i]), om.rgb2gray_unrounded(dists[i])) for i in idx])
    return idx, out


def test_mad_equals_authors_code(scores, stages, oracle):
    idx, expected = oracle
    assert_close(scores[idx], expected[:, 0], rtol=1e-4, atol=1e-6, what="mad vs MAD_index.m")
    assert_close(stages[0][idx], expected[:, 1], rtol=1e-4, atol=1e-6, what="d_detect vs hi_index")
    # d_appear sums differences of nearly equal kurtoses: float32 cancellation, hence an absolute floor.
    assert_close(stages[1][idx], expected[:, 2], rtol=1e-4, atol=1e-5, what="d_appear vs lo_index")
    assert np.any(expected[:, 1] > 0) and np.any(expected[:, 0] > 1.0)


def test_blend_of_stages(scores, stages):
    detect, appear = (s.astype(np.float64) for s in stages)
    b1, b2 = np.exp(-2.55 / 3.35), 1 / (np.log(10) * 3.35)
    alpha = 1 / (1 + b1 * detect ** b2)
    assert_close(scores, appear ** (1 - alpha) * detect ** alpha, rtol=1e-5, atol=1e-6, what="blend")


def test_identical_images_score_zero(scores, stages):
    assert scores[-1] == 0.0 and stages[0][-1] == 0.0 and stages[1][-1] == 0.0
    assert np.all(scores >= 0)


def test_stronger_distortion_scores_worse(sample_pairs, scores):
    # sample_pairs alternates levels 1 and 3 for each (photograph, kind).
    weak, strong = scores[:-1][0::2], scores[:-1][1::2]
    assert strong.mean() > weak.mean()
    assert np.mean(strong >= weak) >= 0.75


def test_odd_size_with_luma(scores):
    """131 x 157 (odd sides: the log-Gabor centre-pixel quirk and the CSF grid without a zero) with BT.601
    luma (``colour="luma"``)."""
    from asym_jax.data import sample_image
    ref = sample_image("coffee")[:131, :157]
    dist = np.clip(ref + 0.03 * np.random.default_rng(0).standard_normal(ref.shape), 0, 1).astype(np.float32)
    ours = mad_module.mad(dist[None], ref[None], colour="luma")
    luma = lambda a: np.asarray(a, np.float64) @ np.array([0.299, 0.587, 0.114]) * 255.0
    expected, hi, _ = om.mad_index(luma(ref), luma(dist))
    assert hi > 0
    assert_close(ours, [expected], rtol=1e-4, what="mad 131 x 157 luma")


def test_grey_input_with_shared_reference(batch, scores):
    refs, dists = batch
    # The first photograph's pairs share one reference; score them as grey images against it.
    same = [i for i in range(len(refs) - 1) if np.array_equal(refs[i], refs[0])]
    grey = lambda a: (np.asarray(a, np.float64) @ np.array(om.rgb2gray_unrounded(np.eye(3)) / 255.0))[..., None]
    x = grey(dists[same]).astype(np.float32)
    y = grey(refs[:1]).astype(np.float32)
    ours = np.asarray(mad_module.mad(x, y))
    assert_close(ours, scores[same], rtol=2e-4, atol=1e-5, what="grey shared reference vs rgb batch")


def test_too_small_input_raises():
    x = jnp.zeros((1, 33, 64, 3))
    with pytest.raises(InputError, match="34 x 34"):
        mad_module.mad(x, x)
    with pytest.raises(InputError):
        mad_module.mad(jnp.zeros((1, 64, 64, 2)), jnp.zeros((1, 64, 64, 2)))
