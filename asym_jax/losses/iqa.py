"""Losses for training quality models against human scores (the ``iqa_fr_train`` and ``iqa_nr`` jobs).

``prediction`` and ``target`` are per-image vectors oriented so that higher is better, the target
normalised to [0, 1] over the dataset's score range:

* ``mse``, ``l1``: mean squared / absolute difference;
* ``plcc``: ``(1 - cos(centred prediction, centred target)) / 2`` (as CLIP-IQA+ and pyiqa define the PLCC
  loss; invariant to the prediction's offset and scale);
* ``ranking``: over the pairs ``(i, j)`` with ``target_i > target_j`` (within one group when ``groups``
  is given: images of one reference), the mean of ``softplus(-(prediction_i - prediction_j) * rank_scale)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from asym_jax.errors import InputError

__all__ = ["IQA_LOSSES", "iqa_loss"]

IQA_LOSSES = ("mse", "l1", "plcc", "ranking")


def iqa_loss(name: str, prediction: jax.Array, target: jax.Array, groups: jax.Array | None = None, *,
             rank_scale: float = 1.0) -> jax.Array:
    """The batch loss ``name`` (a scalar); see the module docstring."""
    prediction, target = prediction.astype(jnp.float32), target.astype(jnp.float32)
    if name == "mse":
        return jnp.mean(jnp.square(prediction - target))
    if name == "l1":
        return jnp.mean(jnp.abs(prediction - target))
    if name == "plcc":
        pc, tc = prediction - jnp.mean(prediction), target - jnp.mean(target)
        cosine = jnp.sum(pc * tc) / (jnp.sqrt(jnp.sum(pc * pc) * jnp.sum(tc * tc)) + 1e-12)
        return (1.0 - cosine) / 2.0
    if name == "ranking":
        better = target[:, None] > target[None, :]
        if groups is not None:
            better = better & (groups[:, None] == groups[None, :])
        margin = (prediction[:, None] - prediction[None, :]) * rank_scale
        pairs = jnp.maximum(jnp.sum(better), 1)
        return jnp.sum(jnp.where(better, jax.nn.softplus(-margin), 0.0)) / pairs
    raise InputError(f"IQA loss must be one of {', '.join(IQA_LOSSES)}, got {name!r}")
