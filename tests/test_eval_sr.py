"""SR evaluation (``asym_jax.eval.sr``): the bicubic panel is scored once per run and reused."""

import numpy as np

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
        return np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)

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
