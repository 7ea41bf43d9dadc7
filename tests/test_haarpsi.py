"""HaarPSI against a float64 transcription of the authors' HaarPSI.m and against piq 0.8.

The oracle :func:`haarpsi_m` follows ``HaarPSI.m`` (github.com/rgcda/haarpsi, R. Reisenhofer, 2017) step by
step on 0..255 float64 images: its three-decimal YIQ matrix, ``HaarPSISubsample`` (``conv2(img, ones(2)/4,
'same')`` then ``img(1:2:end, 1:2:end)``), ``HaarPSIDec`` (``conv2(X, haarFilter, 'same')`` for 3 scales, the
filter and its transpose), the 2 x 2 mean of I and Q, the local similarities and weights, and
``HaarPSILogInv(sum(HaarPSILog(s) .* w) / sum(w))^2``. MATLAB's ``conv2(A, B, 'same')`` is taken literally:
the full 2-D convolution cropped from row/column ``floor(size(B) / 2)`` (0-based).

piq 0.8 is run on float64 tensors with ``reduction='none'``, data_range 1; our ``yiq='piq'`` option takes
its YIQ matrix (its only difference from HaarPSI.m besides a 2.2e-16 epsilon in the weighted mean).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from asym_jax.data import distort, sample_image
from asym_jax.errors import InputError
from asym_jax.metrics.haar import haarpsi
from helpers import assert_close, assert_float32_highest, to_torch


# ----------------------------------------------------------------------------------------------------------------
# Float64 transcription of HaarPSI.m

def _conv2_same(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    full = signal.convolve2d(a, b, mode="full")
    r0, c0 = b.shape[0] // 2, b.shape[1] // 2
    return full[r0:r0 + a.shape[0], c0:c0 + a.shape[1]]


def _subsample(img: np.ndarray) -> np.ndarray:
    return _conv2_same(img, np.ones((2, 2)) / 4.0)[::2, ::2]


def _decompose(img: np.ndarray, n_scales: int = 3) -> list[np.ndarray]:
    """Coefficients 1..n (first orientation) then n+1..2n (transposed filter), as HaarPSIDec."""
    first, second = [], []
    for k in range(1, n_scales + 1):
        haar = 2.0 ** -k * np.ones((2 ** k, 2 ** k))
        haar[: 2 ** (k - 1), :] *= -1.0
        first.append(_conv2_same(img, haar))
        second.append(_conv2_same(img, haar.T))
    return first + second


HAARPSI_M_YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))
PIQ_YIQ = ((0.299, 0.587, 0.114), (0.5959, -0.2746, -0.3213), (0.2115, -0.5227, 0.3112))


def haarpsi_m(ref: np.ndarray, dist: np.ndarray, subsample: bool = True, yiq=HAARPSI_M_YIQ) -> float:
    """HaarPSI.m on H x W x 3 or H x W x 1 images in [0, 1] (scaled to 0..255 here); ``yiq`` replaces its
    colour matrix (rows Y, I, Q)."""
    ref, dist = np.asarray(ref, np.float64) * 255.0, np.asarray(dist, np.float64) * 255.0
    c, alpha, n_scales = 30.0, 4.2, 3
    colour = ref.shape[-1] == 3
    if colour:
        def to_yiq(im):
            return [m[0] * im[..., 0] + m[1] * im[..., 1] + m[2] * im[..., 2] for m in yiq]
        (ry, ri, rq), (dy, di, dq) = to_yiq(ref), to_yiq(dist)
    else:
        ry, dy = ref[..., 0], dist[..., 0]
    if subsample:
        ry, dy = _subsample(ry), _subsample(dy)
        if colour:
            ri, rq, di, dq = _subsample(ri), _subsample(rq), _subsample(di), _subsample(dq)
    cr, cd = _decompose(ry), _decompose(dy)
    sims, weights = [], []
    for ori in range(2):
        weights.append(np.maximum(np.abs(cr[2 + ori * n_scales]), np.abs(cd[2 + ori * n_scales])))
        total = 0.0
        for k in range(2):
            a, b = np.abs(cr[k + ori * n_scales]), np.abs(cd[k + ori * n_scales])
            total = total + (2 * a * b + c) / (a ** 2 + b ** 2 + c)
        sims.append(total / 2)
    if colour:
        mean = np.ones((2, 2)) / 4.0
        a_i, b_i = np.abs(_conv2_same(ri, mean)), np.abs(_conv2_same(di, mean))
        a_q, b_q = np.abs(_conv2_same(rq, mean)), np.abs(_conv2_same(dq, mean))
        sim_i = (2 * a_i * b_i + c) / (a_i ** 2 + b_i ** 2 + c)
        sim_q = (2 * a_q * b_q + c) / (a_q ** 2 + b_q ** 2 + c)
        sims.append((sim_i + sim_q) / 2)
        weights.append((weights[0] + weights[1]) / 2)
    s, w = np.stack(sims), np.stack(weights)
    mean_logistic = np.sum(1.0 / (1.0 + np.exp(-alpha * s)) * w) / np.sum(w)
    return float((np.log(mean_logistic / (1 - mean_logistic)) / alpha) ** 2)


# ----------------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def default_scores(sample_pairs):
    refs, dists = sample_pairs
    return np.asarray(haarpsi(dists, refs))


def _piq_scores(piq, torch, dists, refs, **options):
    return piq.haarpsi(to_torch(torch, dists).double(), to_torch(torch, refs).double(), data_range=1.0,
                       reduction="none", **options).numpy()


def _grey(a: np.ndarray) -> np.ndarray:
    return (a.astype(np.float64) @ np.array([0.299, 0.587, 0.114]))[..., None].astype(np.float32)


def test_default_equals_haarpsi_m(sample_pairs, default_scores):
    refs, dists = sample_pairs
    expected = [haarpsi_m(r, d) for r, d in zip(refs, dists)]
    assert_close(default_scores, expected, rtol=1e-5, what="haarpsi vs HaarPSI.m")


def test_piq_yiq_equals_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    assert_close(haarpsi(dists, refs, yiq="piq"), _piq_scores(piq, torch, dists, refs), rtol=1e-5,
                 what="haarpsi(yiq='piq') vs piq")


def test_odd_size_grey_equals_haarpsi_m_and_piq(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    refs, dists = _grey(refs[::3, :131, 5:162]), _grey(dists[::3, :131, 5:162])
    ours = haarpsi(dists, refs)
    assert_close(ours, [haarpsi_m(r, d) for r, d in zip(refs, dists)], rtol=1e-5, what="grey 131 x 157 vs HaarPSI.m")
    assert_close(ours, _piq_scores(piq, torch, dists, refs), rtol=1e-5, what="grey 131 x 157 vs piq")


def test_odd_size_colour_equals_haarpsi_m(sample_pairs):
    refs, dists = sample_pairs
    refs, dists = refs[::4, :131, 5:162], dists[::4, :131, 5:162]
    assert_close(haarpsi(dists, refs), [haarpsi_m(r, d) for r, d in zip(refs, dists)], rtol=1e-5,
                 what="131 x 157 vs HaarPSI.m")


def test_no_subsampling_equals_piq_and_haarpsi_m(sample_pairs, piq, torch):
    refs, dists = sample_pairs
    refs, dists = refs[::4, :47, :61], dists[::4, :47, :61]
    ours = haarpsi(dists, refs, subsample=False, yiq="piq")
    assert_close(ours, _piq_scores(piq, torch, dists, refs, subsample=False), rtol=1e-5,
                 what="subsample=False vs piq")
    assert_close(ours, [haarpsi_m(r, d, subsample=False, yiq=PIQ_YIQ) for r, d in zip(refs, dists)], rtol=1e-5,
                 what="subsample=False vs HaarPSI.m with piq's YIQ")


def test_large_image_keeps_factor_two():
    """HaarPSI.m halves any image once (no size-dependent factor): 400 x 420 against the transcription."""
    ref = sample_image("astronaut")[:400, :420]
    dist = distort(ref, "noise", 2, seed=0)
    assert_close(haarpsi(dist[None], ref[None]), [haarpsi_m(ref, dist)], rtol=1e-5, what="400 x 420")


def test_identical_images_score_one(sample_pairs):
    refs, _ = sample_pairs
    assert_close(haarpsi(refs, refs), np.ones(len(refs)), rtol=1e-6, what="identical")
    black = jnp.zeros((2, 16, 16, 3))
    assert_close(haarpsi(black, black), [1.0, 1.0], rtol=1e-6, what="black vs black (0/0 weights)")


def test_stronger_distortion_scores_worse(default_scores):
    level1, level3 = default_scores[0::2], default_scores[1::2]  # sample_pairs: levels (1, 3) alternate
    assert level3.mean() < level1.mean() - 0.05, (level1, level3)
    assert np.all((default_scores > 0) & (default_scores < 1))


def test_chromatic_false_shared_reference_and_input_errors(sample_pairs):
    """chromatic=False is the grey form on the luma; a reference of batch 1 is shared by the batch."""
    refs, dists = sample_pairs
    ref, batch = refs[:1, :64, :64], dists[:3, :64, :64]
    expected = [haarpsi_m(_grey(ref)[0], d) for d in _grey(batch)]
    assert_close(haarpsi(batch, ref, chromatic=False), expected, rtol=1e-5, what="chromatic=False, shared ref")
    with pytest.raises(InputError, match="16 x 16"):
        haarpsi(batch[:, :15], ref[:, :15])
    with pytest.raises(InputError, match="yiq"):
        haarpsi(batch, ref, yiq="ntsc")
    with pytest.raises(InputError):
        haarpsi(batch[..., :2], ref[..., :2])


def test_gradients_equal_piq_autograd_and_descend(piq, torch):
    """Where no coefficient is exactly 0 and no weight ties (a jittered crop), the gradient is piq's
    (float64 autograd); it is finite at x == y, on flat and black images, and descends."""
    rng = np.random.default_rng(0)
    ref = sample_image("astronaut")[100:164, 180:244][None]
    dist = distort(ref[0], "blur", 2)[None]
    ref, dist = (0.99 * a + rng.uniform(0, 1e-3, a.shape).astype(np.float32) for a in (ref, dist))
    assert_float32_highest(jax.make_jaxpr(lambda a, b: haarpsi(a, b))(dist, ref), "haarpsi")
    value_and_grad = jax.jit(jax.value_and_grad(lambda a, b: jnp.mean(1.0 - haarpsi(a, b, yiq="piq"))))
    value, grad = value_and_grad(dist, ref)
    x = to_torch(torch, dist).double().requires_grad_()
    (1.0 - piq.haarpsi(x, to_torch(torch, ref).double(), reduction="mean")).backward()
    expected = np.transpose(x.grad.numpy(), (0, 2, 3, 1))
    assert_close(grad, expected, atol=1e-5 * np.abs(expected).max(), rtol=1e-4, what="gradient vs piq autograd")
    assert float(jnp.sum(grad * (dist - ref))) > 0
    lower, _ = value_and_grad(dist - 1e-2 / float(jnp.abs(grad).max()) * grad, ref)
    assert float(lower) < float(value)
    flat = jnp.full_like(ref, 0.5)
    for a, b in ((ref, ref), (flat, flat), (flat, flat / 2), (0 * flat, 0 * flat), (0 * flat, flat)):
        value, grad = value_and_grad(a, b)
        assert np.isfinite(float(value)) and np.all(np.isfinite(grad))
    _, grad = value_and_grad(ref, ref)
    assert float(jnp.abs(grad).max()) == 0.0
    _, grad = value_and_grad(0 * flat, flat)  # d|t|/dt = 1 at t = 0: a black x still gets a gradient
    assert float(jnp.abs(grad).max()) > 0.0
