"""Evaluation: SR panels (model vs bicubic on held-out images); IQA correlation statistics later."""

from asym_jax.eval.sr import evaluate_sr, sr_metric_specs

__all__ = ["evaluate_sr", "sr_metric_specs"]
