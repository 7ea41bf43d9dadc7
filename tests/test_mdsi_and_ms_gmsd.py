"""MDSI and MS-GMSD(c) against piq 0.8 and, for MDSI, a float64 transcription of the authors' MATLAB code.

piq runs on float64 tensors. Conventions: ``x`` is the distorted image, ``y`` the reference; piq's ``mdsi`` takes
the distorted image first too (its ``GS(x, y) + GS(x, avg) - GS(y, avg)`` is ``GS12 + GS23 - GS13`` of MDSI.m
with 1 = reference, 2 = distorted); ``multi_scale_gmsd`` is symmetric.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
from scipy import signal

from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.gradient import mdsi, ms_gmsd
from helpers import assert_close, assert_float32_highest, to_torch


def _conv2_same(a: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """MATLAB ``conv2(a, kernel, 'same')``: the central part of the full convolution, starting at
    ``floor(size(kernel) / 2)`` (for an even kernel MATLAB keeps one more sample before than after)."""
    full = signal.convolve2d(a, kernel, mode="full")
    r0, c0 = kernel.shape[0] // 2, kernel.shape[1] // 2
    return full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]]


def mdsi_matlab(ref: np.ndarray, dist: np.ndarray, comb: str = "sum") -> float:
    """Float64 transcription of MDSI.m (Nafchi et al., MATLAB File Exchange 59809), step by step: 8-bit
    scale, ``f = max(1, round(min(rows, cols) / 256))``, ``conv2(., fspecial('average', f), 'same')`` and
    ``(1:f:end, 1:f:end)`` per RGB channel, L/H/M channels, Prewitt ``conv2 'same'`` gradient magnitudes of
    L1, L2 and their mean, GS12 + GS23 - GS13, CS, the "sum" (alpha 0.6) or "mult" (gamma 0.2, beta 0.1)
    combination as complex powers, and ``mad((GCS .^ 0.5) .^ 0.5) ^ 0.25`` (mean absolute deviation)."""
    ref, dist = np.asarray(ref, np.float64) * 255.0, np.asarray(dist, np.float64) * 255.0
    rows, cols = ref.shape[:2]
    f = max(1, int(np.floor(min(rows, cols) / 256 + 0.5)))
    box = np.ones((f, f)) / f ** 2

    def channels(image):
        return [_conv2_same(image[:, :, c], box)[0:rows:f, 0:cols:f] for c in range(3)]

    (r1, g1, b1), (r2, g2, b2) = channels(ref), channels(dist)
    l1, l2 = 0.2989 * r1 + 0.5870 * g1 + 0.1140 * b1, 0.2989 * r2 + 0.5870 * g2 + 0.1140 * b2
    fused = 0.5 * (l1 + l2)
    h1, h2 = 0.30 * r1 + 0.04 * g1 - 0.35 * b1, 0.30 * r2 + 0.04 * g2 - 0.35 * b2
    m1, m2 = 0.34 * r1 - 0.60 * g1 + 0.17 * b1, 0.34 * r2 - 0.60 * g2 + 0.17 * b2
    dx = np.array([[1.0, 0.0, -1.0]] * 3) / 3.0

    def magnitude(image):
        return np.sqrt(_conv2_same(image, dx) ** 2 + _conv2_same(image, dx.T) ** 2)

    g_r, g_d, g_f = magnitude(l1), magnitude(l2), magnitude(fused)

    def similarity(a, b, c):
        return (2 * a * b + c) / (a ** 2 + b ** 2 + c)

    gs = similarity(g_r, g_d, 140.0) + similarity(g_d, g_f, 55.0) - similarity(g_r, g_f, 55.0)
    cs = (2 * (h1 * h2 + m1 * m2) + 550.0) / (h1 ** 2 + h2 ** 2 + m1 ** 2 + m2 ** 2 + 550.0)
    if comb == "sum":
        gcs = (0.6 * gs + 0.4 * cs).astype(np.complex128)
    else:
        gcs = gs.astype(np.complex128) ** 0.2 * cs.astype(np.complex128) ** 0.1
    z = (gcs.ravel() ** 0.5) ** 0.5
    return float(np.mean(np.abs(z - z.mean())) ** 0.25)


@pytest.fixture(scope="module")
def tensors(torch, sample_pairs):
    """Every third pair (12: each photograph and distortion kind once) as float64 tensors for piq."""
    refs, dists = sample_pairs
    return to_torch(torch, refs[::3]).double(), to_torch(torch, dists[::3]).double()


@pytest.fixture(scope="module")
def odd_pair():
    """131 x 157 crop of a photograph and its noisy version, and a 400 x 420 pair (f = 2)."""
    big = sample_image("coffee")[:400, :420]
    ref = big[40:171, 60:217]
    rng = np.random.default_rng(3)
    dist = np.clip(ref + rng.normal(0, 0.05, ref.shape), 0, 1).astype(np.float32)
    return ref, dist, big, distort(big, "jpeg", 2)


# ---------------------------------------------------------------------------------------------- MDSI


def test_mdsi_sum_equals_piq_and_mdsi_m(sample_pairs, tensors, piq):
    refs, dists = sample_pairs
    ours = mdsi(dists, refs)
    expected = piq.mdsi(tensors[1], tensors[0], combination="sum", reduction="none").numpy()
    assert_close(np.asarray(ours)[::3], expected, rtol=1e-4, what="mdsi sum vs piq")
    oracle = [mdsi_matlab(r, d) for r, d in zip(refs[1::3], dists[1::3])]
    assert_close(np.asarray(ours)[1::3], oracle, rtol=1e-4, what="mdsi sum vs MDSI.m")


def test_mdsi_mult_equals_mdsi_m_and_piq_form(sample_pairs, tensors, piq):
    refs, dists = sample_pairs
    oracle = [mdsi_matlab(r, d, "mult") for r, d in zip(refs[::3], dists[::3])]
    assert_close(np.asarray(mdsi(dists, refs, combination="mult"))[::3], oracle, rtol=1e-4, what="mdsi mult vs MDSI.m")
    expected = piq.mdsi(tensors[1], tensors[0], combination="mult", reduction="none").numpy()
    assert_close(np.asarray(mdsi(dists, refs, combination="mult", mult_form="piq"))[::3], expected, rtol=1e-4,
                 what="mdsi mult vs piq")


def test_mdsi_odd_and_downsampled_sizes(odd_pair, torch, piq):
    ref, dist, big_ref, big_dist = odd_pair
    for r, d, what in ((ref, dist, "131 x 157"), (big_ref, big_dist, "400 x 420 (f = 2)")):
        ours = mdsi(d[None], r[None])
        assert_close(ours, [mdsi_matlab(r, d)], rtol=1e-4, what=f"mdsi {what} vs MDSI.m")
        expected = piq.mdsi(to_torch(torch, d[None]).double(), to_torch(torch, r[None]).double(), reduction="none")
        assert_close(ours, expected.numpy(), rtol=1e-4, what=f"mdsi {what} vs piq")


def test_mdsi_grey_is_repeated_rgb(odd_pair):
    ref, dist = odd_pair[0][..., :1], odd_pair[1][..., :1]
    assert_close(mdsi(dist[None], ref[None]), mdsi(np.repeat(dist, 3, -1)[None], np.repeat(ref, 3, -1)[None]),
                 rtol=1e-6, what="mdsi grey")


def test_mdsi_properties(sample_pairs):
    refs, dists = sample_pairs
    assert np.all(np.asarray(mdsi(refs, refs)) == 0.0)
    scores = np.asarray(mdsi(dists, refs))
    assert scores[1::2].mean() > scores[::2].mean()  # level 3 worse than level 1
    shared = mdsi(dists[:6], refs[:1])  # the first six pairs share the astronaut reference
    assert_close(shared, scores[:6], rtol=1e-5, what="mdsi shared reference")
    with pytest.raises(InputError, match="at least 3 x 3"):
        mdsi(refs[:1, :2, :8], refs[:1, :2, :8])
    with pytest.raises(InputError, match="combination"):
        mdsi(refs[:1], refs[:1], combination="max")


# ------------------------------------------------------------------------------------------- MS-GMSD


@pytest.mark.parametrize("chromatic", [False, True])
def test_ms_gmsd_equals_piq(sample_pairs, tensors, piq, chromatic):
    refs, dists = sample_pairs
    expected = piq.multi_scale_gmsd(tensors[1], tensors[0], chromatic=chromatic, reduction="none").numpy()
    scores = ms_gmsd(dists, refs, chromatic=chromatic)
    assert_close(np.asarray(scores)[::3], expected, rtol=1e-4, what=f"ms_gmsd chromatic={chromatic} vs piq")
    assert np.all(np.asarray(ms_gmsd(refs, refs, chromatic=chromatic)) == 0.0)
    scores = np.asarray(scores)
    assert scores[1::2].mean() > scores[::2].mean()
    shared = ms_gmsd(dists[:6], refs[:1], chromatic=chromatic)  # the first six pairs share their reference
    assert_close(shared, scores[:6], rtol=1e-5, what=f"ms_gmsd chromatic={chromatic} shared reference")


def test_ms_gmsd_odd_size_and_grey(odd_pair, torch, piq):
    ref, dist = odd_pair[:2]
    for chromatic in (False, True):
        expected = piq.multi_scale_gmsd(to_torch(torch, dist[None]).double(), to_torch(torch, ref[None]).double(),
                                        chromatic=chromatic, reduction="none").numpy()
        assert_close(ms_gmsd(dist[None], ref[None], chromatic=chromatic), expected, rtol=1e-4,
                     what=f"ms_gmsd 131 x 157 chromatic={chromatic}")
    grey_ref, grey_dist = ref[None, ..., :1], dist[None, ..., :1]
    expected = piq.multi_scale_gmsd(to_torch(torch, grey_dist).double(), to_torch(torch, grey_ref).double(),
                                    reduction="none").numpy()
    assert_close(ms_gmsd(grey_dist, grey_ref), expected, rtol=1e-4, what="ms_gmsd grey")


def test_ms_gmsd_rejects_bad_inputs():
    x = np.zeros((1, 16, 40, 3), np.float32)
    with pytest.raises(InputError, match="at least 17 x 17"):
        ms_gmsd(x, x)
    grey = np.zeros((1, 32, 32, 1), np.float32)
    with pytest.raises(InputError, match="chromatic"):
        ms_gmsd(grey, grey, chromatic=True)


def test_float32_highest_precision():
    x = np.zeros((1, 24, 24, 3), np.float32)
    for name, fn in (("mdsi", mdsi), ("ms_gmsd", lambda a, b: ms_gmsd(a, b, chromatic=True))):
        assert_float32_highest(jax.make_jaxpr(fn)(x, x), name)
