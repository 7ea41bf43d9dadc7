"""The ``score`` job (``configs/score.py``): metric specs scored on image pairs.

``config.ref`` / ``config.dist`` (two files or two folders matched by name) are scored with every spec of
``config.metrics``; without them the embedded sample photographs are scored under synthetic distortions,
and each metric's ordering of the distortion levels is summarised (:func:`ranking_summary`). Writes
``<workdir>/scores.csv`` and ``<workdir>/summary.json``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from asym_jax.eval.scoring import check_specs, format_table, match_pairs, means, read_pairs, score_pairs, write_csv
from asym_jax.io import holds_workdir

__all__ = ["ranking_summary", "run_job"]


def _sample_pairs(config) -> list[tuple[str, np.ndarray, np.ndarray, str, int]]:
    from asym_jax.data import sample_pairs
    out = []
    for image, kind, level, ref, dist in sample_pairs(names=tuple(config.sample_images), kinds=tuple(config.distortions),
                                                      levels=tuple(range(5)), crop=config.sample_crop):
        out.append((f"{image}_{kind}_{level}", ref, dist, f"{image}/{kind}", level))
    return out


def ranking_summary(rows: Sequence[dict], groups: Sequence[str], levels: Sequence[int],
                    specs: Sequence[str]) -> dict[str, float]:
    """Mean Spearman correlation between distortion level and quality, over (image, distortion) groups.

    Scores are oriented so that 1 means the metric orders every group's levels correctly (higher
    quality for milder distortion). A sanity check on synthetic data, not a human-opinion benchmark.
    """
    from scipy.stats import spearmanr

    from asym_jax import metrics
    summary = {}
    for m in specs:
        sign = 1.0 if metrics.info(metrics.parse_spec(m)[0]).higher_is_better else -1.0
        correlations = []
        for group in sorted(set(groups)):
            idx = [i for i, g in enumerate(groups) if g == group]
            quality = [sign * rows[i][m] for i in idx]
            rho = spearmanr([-levels[i] for i in idx], quality).statistic
            correlations.append(0.0 if np.isnan(rho) else rho)
        summary[m] = float(np.mean(correlations))
    return summary


@holds_workdir
def run_job(config, workdir: str) -> dict:
    """Scores ``config.ref`` vs ``config.dist`` (or the embedded sample set); returns the summary."""
    from absl import logging

    from asym_jax.io import workdir_path, write_json

    workdir = workdir_path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    names = list(config.metrics)
    check_specs(names)
    if config.ref or config.dist:
        matched = match_pairs(config.ref, config.dist)
        rows = score_pairs(read_pairs(matched), names, batch_size=config.batch_size)
        summary = {"pairs": len(rows), "mean": means(rows, names)}
    else:
        samples = _sample_pairs(config)
        rows = score_pairs([(n, r, d) for n, r, d, _, _ in samples], names, batch_size=config.batch_size)
        ranking = ranking_summary(rows, [s[3] for s in samples], [s[4] for s in samples], names)
        summary = {"pairs": len(rows), "mean": means(rows, names), "level_srcc": ranking,
                   "note": "level_srcc: mean Spearman correlation between distortion level and each metric's "
                           "quality ordering on the embedded sample photographs (1 = perfect ordering)"}
    logging.info("scores:\n%s", format_table(rows, names))
    print(format_table(rows, names))
    if "level_srcc" in summary:
        print("distortion-level SRCC: " + ", ".join(f"{m} {v:.3f}" for m, v in summary["level_srcc"].items()))
    write_csv(workdir / "scores.csv", rows, ["name", *names])
    write_json(workdir / "summary.json", summary)
    print(f"wrote {workdir / 'scores.csv'} and {workdir / 'summary.json'}")
    return summary
