"""SR evaluation (``asym_jax.eval.sr``): the bicubic panel is scored once per run and reused."""

import numpy as np
import pytest

from asym_jax.data.images import to_uint8
from asym_jax.data.imresize import bicubic_lr
from asym_jax.data.samples import sample_photo
from asym_jax.eval import scoring
from asym_jax.eval.sr import evaluate_sr


def _pairs():
    pairs = []
    for name, size in (("astronaut", 64), ("coffee", 48)):
        hr = sample_photo(name)[:size, :size]
        pairs.append((name, hr, to_uint8(bicubic_lr(hr.astype(np.float32) / 255.0, 4))))
    return pairs


def test_the_bicubic_scores_are_computed_once_and_reused(monkeypatch, tmp_path):
    def nearest(lr):
        return np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2)

    calls = []
    score_pairs = scoring.score_pairs
    monkeypatch.setattr(scoring, "score_pairs", lambda *a, **k: calls.append(1) or score_pairs(*a, **k))
    fresh = evaluate_sr(nearest, _pairs(), scale=4, metric_names=["psnr_y", "ssim"])
    baseline = {}
    first = evaluate_sr(nearest, _pairs(), scale=4, metric_names=["psnr_y", "ssim"], baseline=baseline)
    again = evaluate_sr(nearest, _pairs(), scale=4, metric_names=["psnr_y", "ssim"], baseline=baseline,
                        image_dir=tmp_path)
    assert len(calls) == 2 + 2 + 1  # model and bicubic, model and bicubic, then the model alone
    assert fresh == first == again and first["methods"]["bicubic"]["psnr_y"] > first["methods"]["model"]["psnr_y"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["astronaut_bicubic.png", "astronaut_sr.png",
                                                         "coffee_bicubic.png", "coffee_sr.png"]
    # Other metrics: the cache does not apply.
    other = evaluate_sr(nearest, _pairs(), scale=4, metric_names=["psnr_y"], baseline=baseline)
    assert len(calls) == 7 and other["methods"]["bicubic"]["psnr_y"] == first["methods"]["bicubic"]["psnr_y"]


def test_buckets_bound_the_programs_and_change_only_the_border():
    """Mirror-padded buckets: one generator program per bucket shape and batch; the output equals the
    unpadded one wherever the network's receptive field stays inside the image (here a 5 x 5 blur of the
    nearest up-scaling: 2 LR pixels), and the padded rows never reach the scored image."""
    import jax
    import jax.numpy as jnp

    from asym_jax.eval.sr import bucket_shape, upscale_images

    assert bucket_shape(339, 510, 32) == (352, 512) and bucket_shape(64, 64, 32) == (64, 64)
    assert bucket_shape(339, 510, 0) == (339, 510)
    shapes = []

    def blur_up(lr):
        shapes.append(lr.shape)
        kernel = jnp.ones((5, 5, 1, 3), jnp.float32) / 25.0
        blurred = jax.lax.conv_general_dilated(jnp.asarray(lr), kernel, (1, 1), "SAME", feature_group_count=3,
                                               dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return np.repeat(np.repeat(np.asarray(blurred), 4, axis=1), 4, axis=2)

    rng = np.random.default_rng(0)
    lrs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in ((20, 30), (17, 29), (33, 8), (20, 30))]
    exact = upscale_images(blur_up, lrs)
    assert sorted(shapes) == [(1, 17, 29, 3), (1, 20, 30, 3), (1, 20, 30, 3), (1, 33, 8, 3)]
    shapes.clear()
    bucketed = upscale_images(blur_up, lrs, bucket=16, batch_size=2)
    assert sorted(shapes) == [(2, 32, 32, 3), (2, 32, 32, 3), (2, 48, 16, 3)]
    for lr, a, b in zip(lrs, exact, bucketed):
        assert a.shape == b.shape == (4 * lr.shape[0], 4 * lr.shape[1], 3)
        inner = (4 * (lr.shape[0] - 2), 4 * (lr.shape[1] - 2))
        np.testing.assert_allclose(b[:inner[0], :inner[1]], a[:inner[0], :inner[1]], atol=1e-6)


def test_equal_sizes_are_scored_in_batches_in_input_order(monkeypatch):
    calls = []
    score_batch = scoring.score_batch
    monkeypatch.setattr(scoring, "score_batch", lambda m, x, y: calls.append(x.shape) or score_batch(m, x, y))

    def nearest(lr):
        return np.repeat(np.repeat(lr, 4, axis=1), 4, axis=2)

    pairs = _pairs() + [("astro2", *_pairs()[0][1:])]
    one = evaluate_sr(nearest, pairs, scale=4, metric_names=["psnr_y"])
    assert len(calls) == 2 * 3
    calls.clear()
    batched = evaluate_sr(nearest, pairs, scale=4, metric_names=["psnr_y"], batch_size=4, bucket=8)
    assert sorted(calls) == [(1, 48, 48, 3), (1, 48, 48, 3), (2, 64, 64, 3), (2, 64, 64, 3)]
    assert [r["name"] for r in batched["images"]] == ["astronaut", "coffee", "astro2"]
    for a, b in zip(batched["images"], one["images"]):  # float32 sums over a batch of 2 vs 1: 1e-7 apart
        assert a["name"] == b["name"] and a["model/psnr_y"] == pytest.approx(b["model/psnr_y"], rel=1e-6)
