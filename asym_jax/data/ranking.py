"""The embedded ``ranking`` IQA set: sample photographs under synthetic distortions at five levels.

A ranking proxy, not human opinion: within one (photograph, distortion) group the score is the level order
(5 = mildest .. 1 = strongest), which any sensible quality model should reproduce; scores are not
comparable across groups. Used by the tests and the ``:sample`` presets, where no IQA set can be downloaded.
"""

from __future__ import annotations

import numpy as np

from asym_jax.data.images import to_uint8
from asym_jax.data.iqa_sources import IQAItem, IQASpec
from asym_jax.data.samples import DISTORTIONS, distort, sample_photo

__all__ = ["RANKING_IMAGES", "RANKING_SPEC", "CROP"]

RANKING_IMAGES = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field",
                  "motorcycle_left", "retina")
CROP = 256


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    top, left = (image.shape[0] - size) // 2, (image.shape[1] - size) // 2
    return image[top:top + size, left:left + size]


def read_ranking(manual_dir=None) -> list[IQAItem]:
    del manual_dir
    items = []
    for name in RANKING_IMAGES:
        ref = _centre_crop(sample_photo(name), CROP)
        ref_float = ref.astype(np.float32) / 255.0
        for kind in DISTORTIONS:
            for level in range(5):
                seed = 1000 * RANKING_IMAGES.index(name) + 10 * list(DISTORTIONS).index(kind) + level
                dist = to_uint8(distort(ref_float, kind, level, seed=seed))
                items.append(IQAItem(name=f"{name}_{kind}_{level + 1}.png", dist=dist, ref=ref, score=float(5 - level),
                                     ref_id=name, distortion=kind, level=level + 1))
    return items


RANKING_SPEC = IQASpec(
    name="ranking", title="embedded ranking proxy (scikit-image photographs, synthetic distortions)", kind="fr",
    score_name="level rank", higher_is_better=True, score_range=(1.0, 5.0),
    official_count=len(RANKING_IMAGES) * len(DISTORTIONS) * 5, official_splits=(),
    layout="none: made from the photographs shipped in scikit-image", url="scikit-image", reader=read_ranking)
