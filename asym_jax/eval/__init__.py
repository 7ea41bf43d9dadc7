"""Evaluation: scoring image pairs with metric specs (one batch scorer for every job), SR panels (model vs
bicubic on held-out images), the ``score`` job; IQA correlation statistics later."""

from asym_jax.eval.scoring import ScoreError, bind_metrics, check_specs, match_pairs, score_pairs
from asym_jax.eval.sr import evaluate_sr, format_panel, sr_metric_specs

__all__ = ["ScoreError", "bind_metrics", "check_specs", "evaluate_sr", "format_panel", "match_pairs", "score_pairs",
           "sr_metric_specs"]
