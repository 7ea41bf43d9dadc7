"""VSI against a float64 transcription of the authors' VSI.m / SDSP (tests/oracle_vsi.py) and against piq 0.8.

Conventions: the default (``resize``, ``downsample``, ``white_point`` all "matlab") is compared with
``oracle_vsi.vsi`` on the images scaled to 0..255 (as ``double`` of MATLAB's uint8 images, unrounded);
the three options set to "piq" are compared with ``piq.vsi(x, y, data_range=1.0)`` run on float64 tensors.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import oracle_vsi
from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.saliency import vsi
from helpers import assert_close, to_torch

PIQ_OPTIONS = dict(resize="piq", downsample="piq", white_point="piq")


def _piq_vsi(piq, torch, x, y):
    return piq.vsi(to_torch(torch, x).double(), to_torch(torch, y).double(), data_range=1.0,
                   reduction="none").numpy()


def _oracle(x, y):
    return [oracle_vsi.vsi(a.astype(np.float64) * 255.0, b.astype(np.float64) * 255.0) for a, b in zip(x, y)]


@pytest.fixture(scope="module")
def default_scores(sample_pairs):
    refs, dists = sample_pairs
    return np.asarray(vsi(dists, refs))


# Eight of the pairs, covering every distortion kind at both levels (the references are slow).
SUBSET = slice(0, None, 5)


def test_default_equals_matlab_transcription(sample_pairs, default_scores):
    refs, dists = sample_pairs
    subset = SUBSET
    expected = _oracle(dists[subset], refs[subset])
    assert_close(default_scores[subset], expected, rtol=1e-4, what="vsi vs VSI.m")
    # The loss is 1 - score, whose relative error a score near 1 hides: checked as tightly.
    assert_close(1 - default_scores[subset], 1 - np.asarray(expected), rtol=1e-4, what="1 - vsi vs VSI.m")


def test_piq_options_equal_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    refs, dists = refs[SUBSET], dists[SUBSET]
    assert_close(vsi(dists, refs, **PIQ_OPTIONS), _piq_vsi(piq, torch, dists, refs), rtol=1e-4, what="vsi vs piq")


def test_stronger_distortions_score_lower(default_scores):
    assert np.all(default_scores < 1.0)
    # sample_pairs alternates level 1 and level 3 of each distortion.
    assert default_scores[1::2].mean() < default_scores[0::2].mean()
    assert np.mean(default_scores[1::2] < default_scores[0::2]) >= 0.75


def test_downsampling_conventions_on_400_by_420(piq, torch):
    """F = round(400 / 256) = 2: MATLAB's zero-padded conv2 box versus piq's replicate-padded average pool."""
    ref = sample_image("astronaut")[40:440, 50:470]
    dist = distort(ref, "noise", 2, seed=3)
    x, y = dist[None], ref[None]
    ours = vsi(x, y)
    assert_close(ours, _oracle(x, y), rtol=1e-4, what="vsi 400 x 420 vs VSI.m")
    piq_ours = vsi(x, y, **PIQ_OPTIONS)
    assert_close(piq_ours, _piq_vsi(piq, torch, x, y), rtol=1e-4, what="vsi 400 x 420 vs piq")
    assert abs(float(ours[0]) - float(piq_ours[0])) > 1e-5  # the conventions do differ here


def test_odd_size_shared_reference_and_identical_images():
    ref = sample_image("coffee")[100:231, 200:357]  # 131 x 157
    dists = np.stack([distort(ref, "jpeg", 3), distort(ref, "blur", 2)])
    shared = vsi(dists, ref[None])
    assert shared.shape == (2,)
    refs = np.stack([ref, ref])
    assert_close(shared, vsi(dists, refs), rtol=1e-6, what="shared reference")
    assert_close(vsi(refs, refs), [1.0, 1.0], rtol=1e-6, what="vsi(y, y)")
    assert_close(shared, _oracle(dists, [ref, ref]), rtol=1e-4, what="vsi 131 x 157 vs VSI.m")


def test_grey_images_are_three_equal_channels():
    ref = sample_image("camera")[200:264, 200:264].mean(axis=-1, keepdims=True)
    dist = np.clip(ref + np.random.default_rng(0).normal(0, 0.03, ref.shape), 0, 1).astype(np.float32)
    ours = vsi(dist[None], ref[None])
    assert_close(ours, _oracle(np.repeat(dist[None], 3, -1), np.repeat(ref[None], 3, -1)), rtol=1e-4,
                 what="grey vsi vs VSI.m on RGB copies")


def test_bad_inputs_raise():
    with pytest.raises(InputError, match="at least 3 x 3"):
        vsi(jnp.zeros((1, 2, 8, 3)), jnp.zeros((1, 2, 8, 3)))
    with pytest.raises(InputError, match="resize"):
        vsi(jnp.zeros((1, 8, 8, 3)), jnp.zeros((1, 8, 8, 3)), resize="bicubic")
    with pytest.raises(InputError, match="channels"):
        vsi(jnp.zeros((1, 8, 8, 2)), jnp.zeros((1, 8, 8, 2)))


def test_float32_highest_precision():
    import jax

    from helpers import assert_float32_highest
    x = jnp.zeros((1, 16, 16, 3))
    assert_float32_highest(jax.make_jaxpr(lambda a, b: vsi(a, b))(x, x), "vsi")
