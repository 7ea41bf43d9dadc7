"""FSIM / FSIMc against piq 0.8 and against a float64 transcription of the authors' FeatureSIM.m.

Conventions: the defaults follow ``FeatureSIM.m`` (tests/oracle_fsim.py transcribes it: YIQ with its
three-decimal coefficients, ``conv2(..., 'same')`` box downsampling, ``real((S_I S_Q)^0.03)``); piq 0.8
is run on float64 tensors, with x = distorted and y = reference in both. For FSIM (luminance only) the defaults
differ from piq only in phasecong2's epsilon (1e-4 vs machine epsilon) and piq's transposed polar angle,
both below 1e-5 relative on these images, so the default is compared with piq directly; FSIMc is
compared with the piq variant options (``PIQ``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import oracle_fsim
from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.phase import fsim
from helpers import assert_close, to_torch

PIQ = dict(epsilon=2.220446049250313e-16, downsample="avg_pool", yiq="piq", chroma_power="abs", angle_grid="piq")
# sample_pairs is photograph x kind x level (3 x 6 x 2): two kinds at both levels from each photograph.
SUBSET = [12 * photo + 2 * kind + level for photo, kinds in enumerate(((0, 1), (2, 3), (4, 5)))
          for kind in kinds for level in (0, 1)]


@pytest.fixture(scope="module")
def batch(sample_pairs):
    refs, dists = sample_pairs
    assert len(refs) == 36, "SUBSET assumes sample_pairs is 3 photographs x 6 kinds x 2 levels"
    return refs[SUBSET], dists[SUBSET]


@pytest.fixture(scope="module")
def scores(batch):
    refs, dists = batch
    return {"fsim": np.asarray(fsim(dists, refs)), "fsimc": np.asarray(fsim(dists, refs, chromatic=True))}


def _oracle(dist, ref):
    return oracle_fsim.feature_sim(np.asarray(ref, np.float64) * 255.0, np.asarray(dist, np.float64) * 255.0)


def test_equals_piq(batch, scores, piq, torch):
    """FSIM on the first pair of each (photograph, kind, level) couple, FSIMc on the second (piq is slow)."""
    refs, dists = batch
    x, y = to_torch(torch, dists).double(), to_torch(torch, refs).double()
    expected = piq.fsim(x[0::2], y[0::2], data_range=1.0, reduction="none", chromatic=False).numpy()
    assert_close(scores["fsim"][0::2], expected, rtol=1e-4, what="fsim (defaults) vs piq")
    expected = piq.fsim(x[1::2], y[1::2], data_range=1.0, reduction="none", chromatic=True).numpy()
    assert_close(fsim(dists[1::2], refs[1::2], chromatic=True, **PIQ), expected, rtol=1e-4,
                 what="fsimc (piq options) vs piq")


def test_default_equals_featuresim_m(batch, scores):
    refs, dists = batch
    expected = np.array([_oracle(d, r)[:2] for d, r in zip(dists, refs)])
    assert_close(scores["fsim"], expected[:, 0], rtol=1e-4, what="fsim vs FeatureSIM.m")
    assert_close(scores["fsimc"], expected[:, 1], rtol=1e-4, what="fsimc vs FeatureSIM.m")
    # The loss is 1 - score, whose relative error a score near 1 hides: checked as tightly.
    assert_close(1 - scores["fsimc"], 1 - expected[:, 1], rtol=1e-4, what="1 - fsimc vs FeatureSIM.m")


def test_stronger_distortions_score_lower(scores):
    for name in ("fsim", "fsimc"):
        weak, strong = scores[name][0::2], scores[name][1::2]
        assert strong.mean() < weak.mean() - 0.01, (name, weak, strong)
        assert np.all(scores[name] < 1.0) and np.all(scores[name] > 0.3), (name, scores[name])


def test_odd_size_shared_reference_identity_and_negative_chroma_product():
    """131 x 157, one reference shared by three images: a noisy one, one with its chroma negated
    (I -> -I, Q -> -Q about the luma, which makes S_I S_Q negative at thousands of pixels) and the
    reference itself (FSIMc 1)."""
    ref = sample_image("astronaut")[:131, 40:197]
    flipped = np.clip(2.0 * (ref @ np.array([0.299, 0.587, 0.114], np.float32))[..., None] - ref, 0, 1)
    dists = np.stack([distort(ref, "noise", 2), flipped.astype(np.float32), ref])
    shared = np.asarray(fsim(dists, ref[None], chromatic=True))
    expected = [_oracle(d, ref) for d in dists[:2]]
    assert expected[1][2] > 1000  # the complex-power branch is exercised
    assert_close(shared, [e[1] for e in expected] + [1.0], rtol=1e-4, what="fsimc 131 x 157 vs FeatureSIM.m")
    assert abs(shared[2] - 1.0) < 1e-6, shared


def test_downsampling_conventions_on_a_large_image(piq, torch):
    """401 x 419: F = 2. Default: conv2 'same' box + every second pixel (FeatureSIM.m, 201 x 210);
    avg_pool: piq (200 x 209). Odd sides, so the two conventions differ."""
    ref = sample_image("astronaut")[50:451, 60:479]
    dist = distort(ref, "jpeg", 3)
    ours = float(fsim(dist[None], ref[None], chromatic=True)[0])
    assert_close(ours, _oracle(dist, ref)[1], rtol=1e-4, what="fsimc 401 x 419 vs FeatureSIM.m")
    expected = piq.fsim(to_torch(torch, dist[None]).double(), to_torch(torch, ref[None]).double(), data_range=1.0,
                        reduction="none", chromatic=True).numpy()
    variant = np.asarray(fsim(dist[None], ref[None], chromatic=True, **PIQ))
    assert_close(variant, expected, rtol=1e-4, what="fsimc 401 x 419 (piq options) vs piq")
    assert abs(variant[0] - ours) > 1e-4, (variant, ours)


def test_grey_images_and_identity():
    ref = sample_image("coffee")[100:164, 200:280].mean(axis=-1, keepdims=True)
    dist = np.clip(ref + np.random.default_rng(0).normal(0, 0.03, ref.shape), 0, 1).astype(np.float32)
    expected = _oracle(dist[..., 0], ref[..., 0])
    assert expected[0] == expected[1]
    x = np.stack([dist, ref])
    assert_close(fsim(x, ref[None]), [expected[0], 1.0], rtol=1e-4, what="grey fsim vs FeatureSIM.m")
    assert abs(float(fsim(x, ref[None])[1]) - 1.0) < 1e-6
    assert_close(fsim(x, ref[None], chromatic=True), fsim(x, ref[None]), rtol=1e-6, what="grey fsimc = fsim")


def test_too_small_and_bad_options_raise():
    x = jnp.zeros((1, 7, 20, 3))
    with pytest.raises(InputError, match="at least 8 x 8"):
        fsim(x, x)
    x = jnp.zeros((1, 16, 16, 3))
    with pytest.raises(InputError, match="downsample"):
        fsim(x, x, downsample="bicubic")
